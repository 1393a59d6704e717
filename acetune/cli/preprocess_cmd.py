"""`acetune preprocess`: a folder of songs -> a fingerprinted latent cache."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from acetune.cli.config_flags import ConfigFlag, with_config_flags
from acetune.cli.exit_codes import PARTIAL
from acetune.cli.progress import render
from acetune.cli.text import printable

# Flags of the `preprocess` config section: type and help come from the schema, values become `--set` overrides.
PREPROCESS_FLAGS = (
    ConfigFlag("--two-pass", "preprocess.two_pass"),
    ConfigFlag("--max-duration", "preprocess.max_duration_s", "SECONDS"),
    ConfigFlag("--normalize", "preprocess.normalize"),
    ConfigFlag("--latent-mode", "preprocess.latent_mode"),
    ConfigFlag("--seed", "preprocess.seed"),
    ConfigFlag("--timbre-reference", "preprocess.timbre_reference"),
    ConfigFlag("--save-dtype", "preprocess.save_dtype"),
    ConfigFlag("--device", "preprocess.device"),
    ConfigFlag("--precision", "preprocess.precision"),
)


@with_config_flags(PREPROCESS_FLAGS)
def preprocess_command(
    audio_dir: Path = typer.Option(..., help="Folder of songs (searched recursively) with optional labels."),
    checkpoint_dir: Path = typer.Option(..., help="ACE-Step checkpoints folder (holds vae/ and Qwen3-Embedding-0.6B/)."),
    out: Path = typer.Option(..., help="Cache folder to create or update."),
    model: str = typer.Option(None, help="DiT folder inside --checkpoint-dir (default acestep-v15-turbo)."),
    tag: str = typer.Option(None, help="Activation tag (trigger word) added to every caption."),
    tag_position: str = typer.Option(None, help="prepend, append or replace."),
    genre_ratio: int = typer.Option(None, help="Percent of songs whose genre replaces the caption (seeded)."),
    rebuild: bool = typer.Option(False, help="Replace a cache made by another checkpoint or with other options."),
    config: list[Path] = typer.Option(None, "--config", "-c", help="TOML/JSON config file(s) whose [preprocess] "
                                                                    "table is applied, in order."),
    set_: list[str] = typer.Option(None, "--set", metavar="KEY=VALUE",
                                   help="Override a preprocess option: --set preprocess.chunk_s=20 (repeatable)."),
    config_overrides: list[str] = (),
) -> None:
    """Decode, encode and cache every song once; reruns only redo new or changed songs."""
    from acetune.config import resolve_config
    from acetune.data.dataset import scan_dataset
    from acetune.data.preprocess import preprocess
    from acetune.errors import CacheError

    options = resolve_config(files=list(config or []), overrides=[*config_overrides, *(set_ or [])]).preprocess
    console = Console(soft_wrap=True)
    scan = scan_dataset(audio_dir)
    dataset = _relabelled(scan.dataset, tag, tag_position, genre_ratio)
    finished, skipped = render(preprocess(dataset, checkpoint_dir, out, options, model=model, rebuild=rebuild),
                              console)
    problems = [(p.path, p.reason) for p in scan.problems] + [(s.path, s.reason) for s in skipped]
    _print_unused(console, problems)
    not_used = {s.path for s in skipped}
    _print_notices(console, dataset, [n for n in scan.notices + dataset.uncaptioned() if n.path not in not_used])
    summary = finished.summary if finished else {}
    console.print(f"cache [bold]{printable(out)}[/]: {summary.get('cached', 0)} samples "
                  f"({summary.get('computed', 0)} computed, {summary.get('reused', 0)} reused, "
                  f"{summary.get('removed', 0)} removed, {summary.get('failed', 0)} failed)")
    if not summary.get("cached"):
        raise CacheError("no usable samples: every file failed or the folder has no audio", path=audio_dir,
                         fix="see the list above; fix or remove the files and run again")
    if problems:  # the cache is usable, but the user should know it lacks these files
        raise typer.Exit(PARTIAL)


def _relabelled(dataset, tag: str | None, tag_position: str | None, genre_ratio: int | None):
    """The dataset with the command line's activation tag, tag position and genre ratio over its own."""
    import dataclasses

    from acetune.data.dataset import TagConfig

    if tag is not None or tag_position is not None:
        dataset = dataclasses.replace(dataset, tag=TagConfig(tag if tag is not None else dataset.tag.tag,
                                                             tag_position or dataset.tag.position))
    if genre_ratio is not None:
        dataset = dataclasses.replace(dataset, genre_ratio=genre_ratio)
    return dataset


def _print_unused(console: Console, problems: list[tuple[Path, str]]) -> None:
    """The files not in the cache, each with its reason."""
    if problems:
        table = Table("file", "problem", title=f"{len(problems)} file(s) not used")
        for path, reason in problems:
            table.add_row(printable(path), printable(reason))
        console.print(table)


def _print_notices(console: Console, dataset, notices: list) -> None:
    """Notices about songs that are cached (e.g. no caption), paths shown relative to the songs folder."""
    if notices:
        table = Table("file", "notice", title=f"{len(notices)} notice(s) about songs that are used")
        table.columns[0].overflow = "fold"
        for notice in notices:
            shown = notice.path.relative_to(dataset.root) if notice.path.is_relative_to(dataset.root) else notice.path
            table.add_row(printable(shown), printable(notice.text))
        console.print(table)
