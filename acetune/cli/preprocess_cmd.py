"""`acetune preprocess`: a folder of songs -> a fingerprinted latent cache."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from acetune.cli.exit_codes import PARTIAL
from acetune.cli.progress import render
from acetune.cli.text import printable
from acetune.config.schema import Precision
from acetune.config.validation import check_seed


def preprocess_command(
    audio_dir: Path = typer.Option(..., help="Folder of songs (searched recursively) with optional labels."),
    checkpoint_dir: Path = typer.Option(..., help="ACE-Step checkpoints folder (holds vae/ and Qwen3-Embedding-0.6B/)."),
    out: Path = typer.Option(..., help="Cache folder to create or update."),
    model: str = typer.Option(None, help="DiT folder inside --checkpoint-dir (default acestep-v15-turbo)."),
    two_pass: bool = typer.Option(False, help="Low memory: VAE + text encoder first, then the condition encoder."),
    max_duration: float = typer.Option(240.0, help="Keep at most this many seconds from the start of each song (0 = all)."),
    normalize: str = typer.Option("none", help="Loudness before encoding: none, peak (-1 dBFS) or lufs (-14)."),
    latent_mode: str = typer.Option("sample", help="sample the VAE posterior (as ACE-Step trains) or take its mean."),
    seed: int = typer.Option(0, help="Seed of the posterior samples (per song, order-independent)."),
    timbre_reference: str = typer.Option("silence", help="silence (as inference) or zero-frame (upstream LoRA)."),
    save_dtype: str = typer.Option("fp32", help="fp32, bf16 or fp16 for stored tensors (bf16 halves the disk)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1, mps."),
    precision: Precision = typer.Option(Precision.AUTO, help="Compute dtype: auto (bf16 on CUDA, else fp32), fp32, "
                                                             "bf16 or fp16."),
    tag: str = typer.Option(None, help="Activation tag (trigger word) added to every caption."),
    tag_position: str = typer.Option(None, help="prepend, append or replace."),
    genre_ratio: int = typer.Option(None, help="Percent of songs whose genre replaces the caption (seeded)."),
    rebuild: bool = typer.Option(False, help="Replace a cache made by another checkpoint or with other options."),
) -> None:
    """Decode, encode and cache every song once; reruns only redo new or changed songs."""
    import dataclasses

    from acetune.data.dataset import TagConfig, scan_dataset
    from acetune.data.preprocess import PreprocessConfig, preprocess
    from acetune.errors import CacheError
    from acetune.model.devices import resolve_device, resolve_precision
    from acetune.model.weights import short_dtype_name

    check_seed(seed, "--seed")
    console = Console(soft_wrap=True)
    scan = scan_dataset(audio_dir)
    dataset = scan.dataset
    if tag is not None or tag_position is not None:
        dataset = dataclasses.replace(dataset, tag=TagConfig(tag if tag is not None else dataset.tag.tag,
                                                             tag_position or dataset.tag.position))
    if genre_ratio is not None:
        dataset = dataclasses.replace(dataset, genre_ratio=genre_ratio)
    resolved_device = resolve_device(device)
    compute_dtype = short_dtype_name(resolve_precision(precision, resolved_device))
    config = PreprocessConfig(max_duration_s=max_duration or 0.0, normalize=normalize, latent_mode=latent_mode,
                              seed=seed, timbre_reference=timbre_reference, storage_dtype=save_dtype,
                              compute_dtype=compute_dtype, two_pass=two_pass,
                              device=str(resolved_device), model=model)
    finished, skipped = render(preprocess(dataset, checkpoint_dir, out, config, rebuild=rebuild), console)
    problems = [(p.path, p.reason) for p in scan.problems] + [(s.path, s.reason) for s in skipped]
    if problems:
        table = Table("file", "problem", title=f"{len(problems)} file(s) not used")
        for path, reason in problems:
            table.add_row(printable(path), printable(reason))
        console.print(table)
    not_used = {s.path for s in skipped}
    notices = [n for n in scan.notices + dataset.uncaptioned() if n.path not in not_used]
    if notices:
        table = Table("file", "notice", title=f"{len(notices)} notice(s) about songs that are used")
        table.columns[0].overflow = "fold"
        for notice in notices:
            shown = notice.path.relative_to(dataset.root) if notice.path.is_relative_to(dataset.root) else notice.path
            table.add_row(printable(shown), printable(notice.text))
        console.print(table)
    summary = finished.summary if finished else {}
    console.print(f"cache [bold]{printable(out)}[/]: {summary.get('cached', 0)} samples "
                  f"({summary.get('computed', 0)} computed, {summary.get('reused', 0)} reused, "
                  f"{summary.get('removed', 0)} removed, {summary.get('failed', 0)} failed)")
    if not summary.get("cached"):
        raise CacheError("no usable samples: every file failed or the folder has no audio", path=audio_dir,
                         fix="see the list above; fix or remove the files and run again")
    if problems:  # the cache is usable, but the user should know it lacks these files
        raise typer.Exit(PARTIAL)
