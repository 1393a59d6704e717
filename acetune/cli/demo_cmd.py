"""`acetune demo`: the whole path on an embedded default, so a new user sees acetune work in a minute.

Without `--checkpoint-dir` it builds a tiny random checkpoints folder in the official layout and
synthesizes a handful of short songs (chords, bass, drums; different tempi and keys), then
labels, analyzes and preprocesses them into a validated cache, and trains a LoRA on it, printing
where everything is. Auditions, merge and export join this path as they land (README roadmap).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import typer
from rich.console import Console

from acetune.audio import synthesize_song, write_audio
from acetune.cli.progress import render
from acetune.data.captions import TagConfig
from acetune.data.dataset import scan_dataset
from acetune.data.folder_jobs import analyze_dataset
from acetune.data.preprocess import PreprocessConfig, preprocess
from acetune.data.validate import validate_cache
from acetune.config import resolve_config
from acetune.errors import CheckpointWriteError
from acetune.events import EvalDone
from acetune.train.loop import run

DEMO_SONGS = (  # file, bpm, key, seconds, caption
    ("sunrise_pop.wav", 120, "C major", 8.0, "bright synth pop, punchy drums, warm bass"),
    ("rainy_ballad.flac", 76, "A minor", 8.0, "slow melancholic piano ballad"),
    ("night_drive.wav", 100, "F# minor", 8.0, "moody synthwave, steady kick"),
    ("garden_waltz.flac", 90, "G major", 8.0, "gentle acoustic waltz"),
    ("city_funk.wav", 112, "Bb major", 8.0, "funky groove with slap bass"),
    ("storm_rock.wav", 140, "E minor", 8.0, "driving rock beat, distorted power chords"),
)
DEMO_TAG = "acetune-demo"


def write_demo_songs(folder: Path) -> list[Path]:
    """Synthesize the demo songs with caption sidecars (bpm/key are left for `analyze` to find)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed, (name, bpm, key, seconds, caption) in enumerate(DEMO_SONGS):
        path = folder / name
        write_audio(path, synthesize_song(seed=seed, duration_s=seconds, bpm=bpm, key=key), 48000)
        (folder / f"{path.stem}.json").write_text(json.dumps({"caption": caption, "language": "en"}) + "\n")
        paths.append(path)
    return paths


def demo_command(
    out: Path = typer.Option(Path("runs/demo"), help="Folder for everything the demo makes."),
    checkpoint_dir: Path = typer.Option(None, help="Real ACE-Step checkpoints (default: a tiny random model)."),
    audio_dir: Path = typer.Option(None, help="Your songs (default: synthesized demo songs)."),
    overwrite: bool = typer.Option(False, help="Replace an earlier demo in --out."),
) -> None:
    """Build (or use) checkpoints and songs, label, analyze, preprocess, validate and train a LoRA."""
    console = Console(soft_wrap=True)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise CheckpointWriteError("the demo folder already exists", path=out,
                                       fix="pass --overwrite to replace it, or --out elsewhere")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if checkpoint_dir is None:
        from acetune.model.tiny_bundle import write_tiny_bundle

        checkpoint_dir = write_tiny_bundle(out / "checkpoints")
        console.print(f"1. tiny random checkpoints (official layout): [bold]{checkpoint_dir}[/]")
    else:
        console.print(f"1. checkpoints: [bold]{checkpoint_dir}[/]")
    if audio_dir is None:
        audio_dir = out / "songs"
        write_demo_songs(audio_dir)
        console.print(f"2. {len(DEMO_SONGS)} synthesized songs with caption sidecars: [bold]{audio_dir}[/]")
        render(analyze_dataset(scan_dataset(audio_dir).dataset), console)
        console.print("3. analyzed bpm / key / time signature into the sidecars")
    else:
        console.print(f"2. songs: [bold]{audio_dir}[/] (labels as they are; run `acetune dataset analyze` to add bpm/key)")
    cache = out / "cache"
    dataset = scan_dataset(audio_dir, tag=TagConfig(DEMO_TAG, "prepend")).dataset
    render(preprocess(dataset, checkpoint_dir, cache, PreprocessConfig()), console)
    report = validate_cache(cache, checkpoint_dir=checkpoint_dir)
    state = "valid" if report.ok else "INVALID: " + "; ".join(report.problems[:3])
    console.print(f"4. preprocessed {report.samples} songs into [bold]{cache}[/] ({state}, fingerprint "
                  f"{'matches' if not report.fingerprint_differences else 'differs'}), activation tag '{DEMO_TAG}'")
    run_dir = out / "run"
    config = resolve_config(preset="quick_test", files=[], overrides=[
        f'data.cache="{cache}"', f'data.checkpoint_dir="{checkpoint_dir}"', f'save.output_dir="{run_dir}"',
        "data.crop_frames=100", "loop.epochs=20", "optim.lr=5e-3", "optim.grad_accum=1", "loop.eval_every=0",
        "log.tensorboard=false"])
    evals = [e.loss for e in run(config) if isinstance(e, EvalDone)]
    console.print(f"5. trained a LoRA for {config.loop.epochs} epochs: eval loss {evals[0]:.3f} -> {evals[-1]:.3f}; "
                  f"adapter (PEFT format, loads in the ACE-Step app): [bold]{run_dir / 'final'}[/]")
    console.print("next: auditions, merge and ComfyUI export join this demo as they land (README roadmap)")
