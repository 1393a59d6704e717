"""The `acetune` command: a typer app with one module per subcommand group, and the one error boundary.

Command modules import only what their signatures need; the work (torch, models, audio) is imported
inside each command, so `acetune --help` and `acetune CMD --help` start without torch.
"""

from __future__ import annotations

import os
import sys
import warnings

import typer
from rich.console import Console
from rich.text import Text

from acetune import __version__
from acetune.cli import (adapter_cmd, cache_cmd, dataset_cmd, demo_cmd, generate_cmd, memory_cmd, model_cmd,
                         preprocess_cmd, presets_cmd, train_cmd, ui_cmd)
from acetune.cli.aliases import with_current_spellings
from acetune.cli.command_tree import build_command
from acetune.cli.text import shown_lines
from acetune.cli.usage import check_command_path, explain
from acetune.errors import AcetuneError

USER_ERROR_EXIT = 2  # what the README promises for every user-fixable error

app = typer.Typer(name="acetune", help="Fine-tune ACE-Step 1.5 music models.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
app.add_typer(model_cmd.app, name="model")
app.add_typer(dataset_cmd.app, name="dataset")
app.command("preprocess")(preprocess_cmd.preprocess_command)
app.command("demo")(demo_cmd.demo_command)
app.add_typer(presets_cmd.app, name="presets")
app.command("train")(train_cmd.train_command)
app.command("generate")(generate_cmd.generate_command)
app.add_typer(adapter_cmd.app, name="adapter")
app.command("merge")(adapter_cmd.merge_command)
app.command("export-comfyui")(adapter_cmd.export_comfyui_command)
app.command("export-diffusers")(adapter_cmd.export_diffusers_command)
app.command("estimate-memory")(memory_cmd.estimate_memory_command)
app.command("ui")(ui_cmd.ui_command)
dataset_cmd.app.command("validate")(cache_cmd.validate_command)


@app.callback(invoke_without_command=True)
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code: 0 done, 2 a user-fixable error (printed without a traceback)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _quiet_library_noise()
    group = build_command(app)
    path: tuple[str, ...] = ()
    try:
        path = check_command_path(argv, group)
        result = group.main(args=with_current_spellings(argv, path), prog_name="acetune", standalone_mode=False)
    except AcetuneError as err:
        return print_error(err)
    except typer.Abort:
        Console(stderr=True).print("aborted", highlight=False)
        return 130
    except typer.TyperException as err:  # click's usage errors, raised by typer's parser
        if type(err).__name__ == "NoArgsIsHelpError":  # `acetune`, `acetune dataset`: the help is the answer
            typer.echo(err.format_message())
            return 0
        return print_error(explain(err, group, path))
    return result if isinstance(result, int) else 0


def print_error(err: AcetuneError) -> int:
    """`error: …` and its `fix:` line on stderr; user text is printed as text, never as markup."""
    message = Text.assemble(("error:", "bold red"), " ", shown_lines(str(err)))
    Console(stderr=True, soft_wrap=True, highlight=False).print(message)
    return USER_ERROR_EXIT


def _quiet_library_noise() -> None:
    # diffusers' VAE still builds with the old weight_norm API; the warning is not for our users
    warnings.filterwarnings("ignore", message=".*torch.nn.utils.weight_norm.*", category=FutureWarning)
    # the DiT returns a transposed view; nothing modifies it in place, so FSDP's caution does not apply
    warnings.filterwarnings("ignore", message="FSDP2-wrapped module .* returned a view tensor", category=UserWarning)
    # the Hugging Face libraries' own per-file bars would interleave with ours (a user's setting wins)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
