"""`acetune dataset label`: auto-label a song folder with the 5 Hz LM and/or Whisper."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import typer
from rich.console import Console

from acetune.cli.text import printable
from acetune.errors import LabelError
from acetune.events import Event, Finished


def label_command(
    folder: Path = typer.Argument(..., help="Song folder (scanned recursively)."),
    checkpoint_dir: Path = typer.Option(..., help="ACE-Step checkpoints folder (DiT, vae/, acestep-5Hz-lm-*/)."),
    with_: list[str] = typer.Option(["lm"], "--with", help="Labeller: lm (the 5 Hz LM), whisper, omni "
                                                          "(Qwen2.5-Omni), openai or gemini; repeatable."),
    fields: str = typer.Option(None, help="Comma-separated fields to write (default: all): caption,genre,lyrics,"
                                          "bpm,keyscale,timesignature,language,is_instrumental."),
    overwrite: bool = typer.Option(False, help="Also replace values you wrote yourself."),
    dry_run: bool = typer.Option(False, help="Print what would be written; write nothing."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps."),
    lm: str = typer.Option(None, help="LM variant, e.g. 1.7B or acestep-5Hz-lm-4B (default: the largest that fits)."),
    whisper: str = typer.Option(None, help="Whisper folder or Hub id (default: a whisper-*/ folder in "
                                           "--checkpoint-dir)."),
    language: str = typer.Option(None, help="Vocal language Whisper transcribes, e.g. en (default: detected)."),
    model: str = typer.Option(None, help="DiT folder whose audio tokenizer makes the LM's codes."),
    openai_model: str = typer.Option(None, help="Model for --with openai (default: gpt-4o-audio-preview); the key "
                                                "comes from OPENAI_API_KEY."),
    gemini_model: str = typer.Option(None, help="Model for --with gemini (default: gemini-2.5-flash); the key "
                                                "comes from GEMINI_API_KEY."),
    isolate_vocals: bool = typer.Option(False, help="Whisper transcribes only the vocals stem, separated with "
                                                    "demucs (pip install 'acetune[separate]')."),
    separator: str = typer.Option(None, help="demucs model for --isolate-vocals: a name (default htdemucs; "
                                             "downloaded on first use) or a local .th/.yaml file."),
    omni_model: str = typer.Option(None, help="Qwen2.5-Omni folder or Hub id for --with omni (default: a "
                                              "Qwen2.5-Omni*/ folder in --checkpoint-dir, else Qwen/Qwen2.5-Omni-7B)."),
    omni_bits: int = typer.Option(None, help="Load --with omni in 4 or 8 bits (bitsandbytes, CUDA only)."),
    temperature: float = typer.Option(0.3, min=0.0, help="LM sampling temperature (0: greedy)."),
    seed: int = typer.Option(0, help="LM sampling seed."),
) -> None:
    """Describe every song with the chosen labellers and merge the answers into its song.json: values you
    wrote are kept (unless --overwrite), each written value records its source, and a rerun skips songs
    already labelled with the same settings."""
    from acetune.cli.progress import render
    from acetune.label import LabelOptions, LmSettings, label_songs, parse_fields

    options = LabelOptions(with_=tuple(with_), fields=parse_fields(fields), overwrite=overwrite, dry_run=dry_run,
                           device=device, lm=lm, whisper=whisper, language=_language(language), model=model,
                           openai_model=openai_model, gemini_model=gemini_model,
                           omni_model=omni_model, omni_bits=omni_bits,
                           isolate_vocals=isolate_vocals, separator=separator,
                           lm_settings=LmSettings(temperature=temperature, seed=seed))
    console = Console(soft_wrap=True, highlight=False)
    root = Path(folder).resolve()
    finished, _ = render(_printed(label_songs(folder, checkpoint_dir, options), console, root), console)
    if finished is not None:
        console.print("label: " + ", ".join(f"{k} {v}" for k, v in finished.summary.items()))
    if finished is not None and finished.reason == "failed":
        raise LabelError("no song could be labelled (see the reasons above)", path=folder,
                         fix="fix the listed problems and run the command again; labelled songs are skipped")


def _printed(events: Iterable[Event], console: Console, root: Path) -> Iterator[Event]:
    """Print the labelling events as they come; pass every event on (the progress bar takes the rest)."""
    from acetune.label import AlreadyLabelled, Labelled, LabellerReady

    for event in events:
        match event:
            case LabellerReady(kind=kind, detail=detail):
                console.print(f"{kind}: {printable(detail)}")
            case Labelled(path=path, written=written, sources=sources, kept=kept, notes=notes, dry_run=dry):
                verb = "would write" if dry else "wrote"
                said = "; ".join(f"{k}={_short(v)} ({sources[k]})" for k, v in written.items()) or "nothing new"
                console.print(f"{printable(_relative(path, root))}: {verb} {printable(said)}")
                if kept:
                    console.print(f"  kept your {', '.join(kept)} (pass --overwrite to replace)")
                for note in notes:
                    console.print(f"  [yellow]note[/] {printable(note)}")
            case AlreadyLabelled(path=path):
                console.print(f"{printable(_relative(path, root))}: already labelled with these settings")
            case Finished():
                pass
        yield event


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def _short(value: object, limit: int = 60) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _language(value: str | None) -> str | None:
    """--language as an ACE-Step code ("English" -> en); a value naming no language is a ConfigError."""
    from acetune.data.languages import LANGUAGES, read_language
    from acetune.errors import ConfigError

    if value is None:
        return None
    reading = read_language(value)
    if not reading.recognised or reading.code == "unknown":
        raise ConfigError(f"--language {value!r} is not an ACE-Step language", fix=f"use one of: {' '.join(LANGUAGES[:-1])}")
    return reading.code
