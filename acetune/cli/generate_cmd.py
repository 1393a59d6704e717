"""`acetune generate`: caption + lyrics + metas -> audio files, with zero or more adapters.

Same seed, same settings, same adapters -> the same audio. Every file gets a JSON sidecar that
records how it was made.
"""

from __future__ import annotations

from dataclasses import replace
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from acetune.cli.adapter_specs import ALPHA_HELP, check_adapters, parse_adapter
from acetune.cli.text import printable
from acetune.config.schema import Precision, RopeDtype, Task
from acetune.config.validation import check_seed
from acetune.errors import AudioError, ConfigError


class TaskChoice(str, Enum):
    """The tasks `acetune generate` renders (extract and complete need stems and the base model)."""

    TEXT2MUSIC = Task.TEXT2MUSIC.value
    REPAINT = Task.REPAINT.value
    COVER = Task.COVER.value


class RopeChoice(str, Enum):
    AUTO = "auto"  # the convention the adapters were trained with; the official app's without adapters
    MODEL = RopeDtype.MODEL.value
    FP32 = RopeDtype.FP32.value


def describe(settings) -> str:
    """One line a user can check against the variant's recommendation."""
    text = f"{settings.step_count} steps, shift {settings.shift:g}, {settings.method}"
    if settings.kind != "turbo" and settings.guidance > 1:
        text += f", guidance {settings.guidance:g} ({settings.guidance_method})"
    return text


def _lyrics(lyrics: str | None, lyrics_file: Path | None) -> str:
    if lyrics is not None and lyrics_file is not None:
        raise ConfigError("both --lyrics and --lyrics-file were given", fix="pass one of them")
    if lyrics_file is None:
        return lyrics or ""
    try:
        return lyrics_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise AudioError(f"cannot read the lyrics file ({err})", path=lyrics_file,
                         fix="pass a UTF-8 text file") from err


def _rope_choice(choice: RopeChoice, headers: list) -> tuple[RopeDtype, str]:
    if choice is not RopeChoice.AUTO:
        return RopeDtype(choice.value), "--rope-dtype"
    from acetune.generate.studio import rope_dtype_for

    return rope_dtype_for([header.metadata for header in headers])


def _add_adapters(studio, adapters: list[tuple[Path, float]], headers: list, alpha: float | None, caption: str,
                  console: Console) -> None:
    from acetune.adapters.alpha_sources import GIVEN

    for (path, strength), header in zip(adapters, headers):
        with console.status(f"loading adapter {printable(str(path))} ..."):
            loaded = studio.add_adapter(path, strength, alpha=alpha)
        given = f", alpha {alpha:g} given" if header.alpha_source == GIVEN else ""
        console.print(f"adapter {printable(loaded.name)} ({loaded.kind}, {loaded.modules} modules{given}) "
                      f"at strength {strength}")
        for warning in loaded.warnings:
            console.print(f"[yellow]warning[/] {printable(warning)}")
        trigger = loaded.metadata.get("trigger_word", "")
        if trigger and trigger.lower() not in caption.lower():
            console.print(f"[yellow]note[/] {printable(str(path))} was trained with the trigger word "
                          f"{printable(repr(trigger))}; put it in --caption to call up what it learned")


def _check_task(task: Task, src: Path | None, start: float | None, end: float | None) -> None:
    """The task and its source agree, and the source exists, before any model loads."""
    if task == Task.TEXT2MUSIC and src is not None:
        raise ConfigError("--src is for --task repaint or cover", path=src, fix="add --task repaint or --task cover")
    if task != Task.TEXT2MUSIC and src is None:
        raise ConfigError(f"--task {task.value} edits a song: --src is missing", fix="pass --src song.wav")
    if src is not None and not src.is_file():
        raise ConfigError("the source song does not exist", path=src, fix="check the --src path")
    if task != Task.REPAINT and (start is not None or end is not None):
        raise ConfigError("--start and --end are for --task repaint", fix="drop them, or pass --task repaint")


def generate_command(
    caption: str = typer.Option(..., help="What the music is: genre, instruments, mood (add the trigger word)."),
    checkpoint_dir: Path = typer.Option(..., help="ACE-Step checkpoints folder (or a DiT folder beside vae/)."),
    model: str = typer.Option(None, help="DiT folder inside --checkpoint-dir (default acestep-v15-turbo)."),
    lyrics: str = typer.Option(None, help="Lyrics text (default: instrumental)."),
    lyrics_file: Path = typer.Option(None, help="Read the lyrics from this UTF-8 file."),
    language: str = typer.Option("en", help="Lyrics language code."),
    bpm: int = typer.Option(None, help="Tempo written into the prompt's metas."),
    key: str = typer.Option(None, help="Key, e.g. 'A minor'."),
    time_signature: str = typer.Option(None, help="Time signature, e.g. 4 or 3."),
    duration: float = typer.Option(30.0, help="Length in seconds."),
    seed: int = typer.Option(42, help="Noise seed; take i of a batch uses seed + i."),
    batch: int = typer.Option(1, help="Takes to render (one per seed)."),
    steps: int = typer.Option(None, help="Sampler steps (base/sft; turbo uses its 8-step table)."),
    shift: float = typer.Option(None, help="Timestep shift (turbo snaps to 1, 2 or 3)."),
    guidance: float = typer.Option(None, help="CFG scale for base/sft (turbo has no guidance)."),
    guidance_method: str = typer.Option(None, help="apg (default) or adg, for base/sft."),
    method: str = typer.Option(None, help="ode (default) or sde."),
    adapter: list[str] = typer.Option(None, help="Adapter folder or file, optionally PATH@STRENGTH (repeatable)."),
    adapter_alpha: float = typer.Option(None, help=ALPHA_HELP),
    rope_dtype: RopeChoice = typer.Option(RopeChoice.AUTO, help="RoPE frequencies: auto (as the adapters were trained; "
                                          "else model), model (rounded to the compute dtype, as the official app) "
                                          "or fp32."),
    variant: str = typer.Option(None, help="turbo, base or sft when the model's config does not say."),
    out: Path = typer.Option(Path("outputs"), help="Folder for the audio files and their JSON sidecars."),
    name: str = typer.Option(None, help="File-name stem (default: from the caption)."),
    audio_format: str = typer.Option("wav", "--format", help="wav, flac, mp3, ogg, opus, m4a or aac."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1, mps."),
    precision: Precision = typer.Option(Precision.AUTO, help="auto, fp32, bf16 or fp16."),
    overwrite: bool = typer.Option(False, help="Replace existing output files."),
    task_choice: TaskChoice = typer.Option(TaskChoice.TEXT2MUSIC, "--task", help="text2music, repaint (a span of --src) or cover (a new "
                                                    "rendition of --src)."),
    src: Path = typer.Option(None, help="Source song of --task repaint or cover."),
    start: float = typer.Option(None, help="--task repaint: start of the span to regenerate, seconds into --src."),
    end: float = typer.Option(None, help="--task repaint: end of the span to regenerate, seconds into --src."),
) -> None:
    """Render music from a caption, optionally with adapters mixed in at chosen strengths."""
    from acetune.generate import Studio, Track, refuse_existing, safe_stem, take_paths, write_takes

    check_seed(seed, "--seed")
    console = Console(soft_wrap=True, highlight=False)
    if not 1 <= batch <= 64:
        raise ConfigError(f"--batch {batch} is outside [1, 64]", fix="use e.g. --batch 4")
    task = Task(task_choice.value)
    _check_task(task, src, start, end)  # before seconds of model loading
    track = Track(caption=caption, lyrics=_lyrics(lyrics, lyrics_file), language=language, bpm=bpm, keyscale=key,
                  timesignature=time_signature, duration_s=duration, task=task)
    seeds = [seed + i for i in range(batch)]
    paths = take_paths(out, name or safe_stem(caption), seeds, audio_format)
    refuse_existing(paths, overwrite=overwrite)
    adapters = [parse_adapter(spec) for spec in adapter or []]
    headers = check_adapters(adapters, adapter_alpha)  # before seconds of model loading
    rope, why = _rope_choice(rope_dtype, headers)
    with console.status("loading the model, VAE and text encoder ..."):
        studio = Studio.open(checkpoint_dir, model=model, device=device, precision=precision, variant=variant,
                             rope_dtype=rope, cover=task == Task.COVER)
        source = None if src is None else studio.load_source(task, src, start_s=start, end_s=end)
    if source is not None:  # an edit keeps its source's length
        track = replace(track, duration_s=source.duration_s)
    settings = studio.settings(steps=steps, shift=shift, guidance=guidance, guidance_method=guidance_method,
                               method=method)
    _add_adapters(studio, adapters, headers, adapter_alpha, caption, console)
    console.print(f"RoPE frequencies: {rope.value} ({printable(why)})")
    console.print(f"{studio.variant.name} sampler: {describe(settings)}")
    bar = Progress(TextColumn("render"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                   disable=not console.is_terminal)
    with bar:
        bar_task = bar.add_task("render", total=None)
        waveforms = studio.render(track, seeds, settings, source=source,
                                  on_step=lambda done, total: bar.update(bar_task, completed=done, total=total))
    extra = {"model": str(studio.dit_folder), "variant": studio.variant.name, "rope_dtype": rope.value,
             "task": task.value, **({} if source is None else {"src": str(source.path), "span_frames": source.span}),
             "adapters": [{"path": str(a.path), "kind": a.kind, "strength": a.strength} for a in studio.adapters]}
    for path in write_takes(waveforms, paths, seeds, track=track, settings=settings, extra=extra,
                            overwrite=overwrite):
        console.print(f"wrote [bold]{printable(str(path))}[/]")
