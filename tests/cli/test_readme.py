"""The README's commands are the program's: the quick start runs as written, and every other command line in
the README and docs/ parses against the real command tree.

The quick start block is executed in order, in a folder holding a tiny checkpoints/ folder (the
official layout) and a few synthesized songs in my-songs/, so the README cannot drift from the CLI.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from acetune.cli.aliases import with_current_spellings
from acetune.cli.app import app, main
from acetune.cli.command_tree import build_command
from acetune.cli.usage import check_command_path

README = Path(__file__).parents[2] / "README.md"
DOCS = sorted((Path(__file__).parents[2] / "docs").glob("*.md"))


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)


def acetune_lines(block: str) -> list[list[str]]:
    """Each `acetune ...` command of a block as argv (comments dropped; `a && acetune b` keeps b)."""
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        for part in line.split("&&"):
            words = shlex.split(part, comments=True)
            if words and words[0] == "acetune":
                commands.append(words[1:])
    return commands


def quick_start() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Quick start", 1)[1].split("\n## ", 1)[0]
    return acetune_lines(bash_blocks(section)[0])


def test_the_quick_start_runs_as_written(tiny_bundle, tmp_path, monkeypatch, capsys):
    from acetune.cli.demo_cmd import write_demo_songs

    shutil.copytree(tiny_bundle, tmp_path / "checkpoints")
    write_demo_songs(tmp_path / "my-songs")
    monkeypatch.chdir(tmp_path)
    commands = quick_start()
    assert len(commands) >= 10 and commands[0][:2] == ["model", "info"]
    for argv in commands:
        code = main(argv)
        assert code == 0, (argv, capsys.readouterr())
    assert (tmp_path / "runs" / "mystyle" / "final" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "checkpoints" / "acestep-v15-turbo-mystyle" / "model.safetensors").is_file()


ALL = [argv for page in (README, *DOCS) for block in bash_blocks(page.read_text(encoding="utf-8"))
       for argv in acetune_lines(block)]


@pytest.mark.parametrize("argv", ALL, ids=lambda argv: " ".join(argv)[:60])
def test_every_readme_command_line_parses(argv):
    """Command names, option names and value types of every README example are what the CLI accepts."""
    group = build_command(app)
    path = check_command_path(argv, group)
    command = group
    for name in path:
        command = command.commands[name]
    args = with_current_spellings(argv, path)[len(path):]
    if "--help" in args or not hasattr(command, "make_context"):
        return
    command.make_context(" ".join(["acetune", *path]), args, resilient_parsing=False)


def test_every_link_to_a_page_of_the_docs_resolves():
    root = README.parent
    for page in (README, *DOCS):
        for target in re.findall(r"\]\(((?:docs/)?[\w-]+\.md)(?:#[\w-]*)?\)", page.read_text(encoding="utf-8")):
            base = root if target.startswith("docs/") or page == README else page.parent
            assert (base / target).is_file(), (page.name, target)
    assert {page.name for page in DOCS} <= set(re.findall(r"docs/([\w-]+\.md)", README.read_text(encoding="utf-8")))
