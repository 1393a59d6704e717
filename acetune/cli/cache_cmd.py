"""`acetune dataset validate CACHE`: checksums, shapes, NaN/Inf, lengths, padding cost, fingerprint match."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from acetune.cli.text import printable


def validate_command(
    cache: Path = typer.Argument(..., help="Cache folder made by `acetune preprocess`."),
    checkpoint_dir: Path = typer.Option(None, help="Also check that the cache was made by this checkpoint."),
    model: str = typer.Option(None, help="DiT folder inside --checkpoint-dir."),
    batch_size: int = typer.Option(4, help="Batch size for the padding-efficiency estimate."),
) -> None:
    """Read every sample and report what training would meet; exit 2 when something is wrong."""
    from acetune.data.validate import validate_cache
    from acetune.errors import CacheError

    report = validate_cache(cache, batch_size=batch_size, checkpoint_dir=checkpoint_dir, model=model)
    console = Console(soft_wrap=True)
    console.print(f"[bold]{printable(report.folder)}[/]: {report.samples} samples; dtypes: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(report.dtypes.items())))
    table = Table("length", "min", "mean", "max")
    if report.latent and report.latent_seconds:
        table.add_row("latent frames", str(report.latent.minimum), f"{report.latent.mean:.1f}", str(report.latent.maximum))
        s = report.latent_seconds
        table.add_row("seconds", str(s.minimum), f"{s.mean:.1f}", str(s.maximum))
    if report.condition:
        c = report.condition
        table.add_row("condition tokens", str(c.minimum), f"{c.mean:.1f}", str(c.maximum))
    console.print(table)
    padding = Table("batching (batch size %d)" % batch_size, "useful share of computed positions")
    for name, value in report.padding_efficiency.items():
        padding.add_row(name, f"{100 * value:.1f} %")
    console.print(padding)
    if report.fingerprint_differences is not None:
        if report.fingerprint_differences:
            differences = "\n  ".join(printable(line) for line in report.fingerprint_differences)
            console.print("[red]fingerprint MISMATCH[/]:\n  " + differences)
        else:
            console.print("fingerprint: [green]matches[/] the checkpoint")
    if report.unchecksummed:
        console.print(f"[yellow]notice[/] {report.unchecksummed} of {report.samples} samples carry no checksum (the "
                      "cache was made before acetune stored them), so damaged bytes cannot be found in them; "
                      "fix: rebuild with `acetune preprocess --rebuild` to add checksums", highlight=False)
    for warning in report.warnings:
        console.print(f"[yellow]warning[/] {printable(warning)}", highlight=False)
    for problem in report.problems:
        console.print(f"[red]problem[/] {printable(problem)}", highlight=False)
    if not report.ok:
        what = "the cache is empty" if report.samples == 0 else \
            f"{len(report.problems)} problem(s)" + (", fingerprint mismatch" if report.fingerprint_differences else "")
        raise CacheError(f"validation failed: {what}", path=report.folder,
                         fix="rebuild with `acetune preprocess --rebuild` (a plain rerun would reuse the damaged samples)")
    console.print("[green]ok[/]")
