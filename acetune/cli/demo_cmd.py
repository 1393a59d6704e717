"""`acetune demo`: the whole path on an embedded default, so a new user sees acetune work in a minute.

Without `--checkpoint-dir` it builds a tiny random checkpoints folder in the official layout and
synthesizes a handful of short songs (chords, bass, drums; different tempi and keys), then
labels, analyzes, auto-labels (a dry run with the tiny 5 Hz LM) and preprocesses them into a validated cache, trains a LoRA on it with
auditions, renders an A/B against the base, merges the adapter into the base and exports it
for ComfyUI, printing where every artifact is.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import typer
from rich.console import Console

from acetune.cli.text import printable
from acetune.data.demo_songs import DEMO_SONGS, DEMO_TAG, write_demo_songs

AUDITION_PROMPT = "bright synth pop, punchy drums, warm bass"
AUDITION_SECONDS = 4.0
DEMO_SEED = 42


def demo_command(
    out: Path = typer.Option(Path("runs/demo"), help="Folder for everything the demo makes."),
    checkpoint_dir: Path = typer.Option(None, help="Real ACE-Step checkpoints (default: a tiny random model)."),
    audio_dir: Path = typer.Option(None, help="Your songs (default: synthesized demo songs)."),
    overwrite: bool = typer.Option(False, help="Replace an earlier demo in --out."),
) -> None:
    """The whole path: checkpoints and songs, label, preprocess, train with auditions, A/B, merge, export."""
    from acetune.atomic import check_folder_target
    from acetune.cli.progress import render
    from acetune.cli.train_view import train_and_log
    from acetune.config import resolve_config
    from acetune.data.captions import TagConfig
    from acetune.data.dataset import scan_dataset
    from acetune.data.folder_jobs import analyze_dataset
    from acetune.data.preprocess import PreprocessConfig, preprocess
    from acetune.data.validate import validate_cache
    from acetune.events import Auditioned, EvalDone

    console = Console(soft_wrap=True)
    check_folder_target(out, overwrite=overwrite)  # a file, or an earlier demo without --overwrite, is refused
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if checkpoint_dir is None:
        from acetune.model.tiny_bundle import write_tiny_bundle

        checkpoint_dir = write_tiny_bundle(out / "checkpoints", lm=True)
        console.print(f"1. tiny random checkpoints (official layout, with a 5 Hz LM): "
                      f"[bold]{printable(checkpoint_dir)}[/]")
    else:
        console.print(f"1. checkpoints: [bold]{printable(checkpoint_dir)}[/]")
    if audio_dir is None:
        audio_dir = out / "songs"
        write_demo_songs(audio_dir)
        console.print(f"2. {len(DEMO_SONGS)} synthesized songs with caption sidecars: [bold]{printable(audio_dir)}[/]")
        render(analyze_dataset(scan_dataset(audio_dir).dataset), console)
        console.print("3. analyzed bpm / key / time signature into the sidecars")
        if (checkpoint_dir / "acestep-5Hz-lm-tiny").is_dir():  # model.tiny_lm.LM_FOLDER (torch not imported here)
            _label_dry_run(audio_dir, checkpoint_dir, console)
    else:
        console.print(f"2. songs: [bold]{printable(audio_dir)}[/] (labels as they are; run `acetune dataset analyze` "
                      "to add bpm/key)")
    cache = out / "cache"
    dataset = scan_dataset(audio_dir, tag=TagConfig(DEMO_TAG, "prepend")).dataset
    render(preprocess(dataset, checkpoint_dir, cache, PreprocessConfig()), console)
    report = validate_cache(cache, checkpoint_dir=checkpoint_dir)
    state = "valid" if report.ok else "INVALID: " + printable("; ".join(report.problems[:3]))
    console.print(f"4. preprocessed {report.samples} songs into [bold]{printable(cache)}[/] ({state}, fingerprint "
                  f"{'matches' if not report.fingerprint_differences else 'differs'}), activation tag '{DEMO_TAG}'")
    run_dir = out / "run"
    config = resolve_config(preset="quick_test", files=[], overrides=[
        f'data.cache="{cache}"', f'data.checkpoint_dir="{checkpoint_dir}"', f'save.output_dir="{run_dir}"',
        "data.crop_frames=100", "loop.epochs=20", "optim.lr=5e-3", "optim.grad_accum=1", "loop.eval_every=0",
        "log.tensorboard=false", "audition.every_epochs=10", f'audition.prompts=["{AUDITION_PROMPT}"]',
        "audition.strengths=[0.5, 1.0]", f"audition.duration_s={AUDITION_SECONDS}"])
    events = train_and_log(config, console)
    evals = [e.loss for e in events if isinstance(e, EvalDone)]
    auditions = [e for e in events if isinstance(e, Auditioned)]
    console.print(f"5. trained a LoRA for {config.loop.epochs} epochs: eval loss {evals[0]:.3f} -> {evals[-1]:.3f}; "
                  f"adapter (PEFT format, loads in the ACE-Step app): [bold]{printable(run_dir / 'final')}[/]")
    console.print(f"6. {len(auditions)} auditions while training (base, then strengths 0.5 and 1.0 every 10 epochs): "
                  f"[bold]{printable(run_dir / 'auditions')}[/] (index.jsonl lists prompt, seed, step, strength, file)")
    _ship(out, checkpoint_dir, run_dir / "final", console)


def _label_dry_run(audio_dir: Path, checkpoint_dir: Path, console: Console) -> None:
    """`acetune dataset label --dry-run` with the tiny LM on the first song: the whole path (codes, prompt,
    answer, checks) runs; a random LM's answer is noise, so it is usually refused, which is what the checks
    are for. One song keeps the demo quick."""
    from dataclasses import replace

    from acetune.data.dataset import scan_dataset
    from acetune.label import LabelOptions, Labelled, LmSettings, label_dataset, open_labellers

    options = LabelOptions(dry_run=True, lm_settings=LmSettings(max_new_tokens=32))
    labellers = open_labellers(checkpoint_dir, options)
    dataset = scan_dataset(audio_dir).dataset
    first = replace(dataset, samples=dataset.samples[:1])
    events = list(label_dataset(first, labellers, dry_run=True))
    outcome = "described" if any(isinstance(e, Labelled) for e in events) else "answered with noise (refused)"
    console.print(f"   auto-labelled {printable(first.samples[0].relative)} with the tiny 5 Hz LM "
                  f"({printable(labellers[0].detail)}; dry run, nothing written): {outcome}; with the real "
                  f"acestep-5Hz-lm run `acetune dataset label SONGS --checkpoint-dir CKPT`")


def _ship(out: Path, checkpoint_dir: Path, adapter: Path, console: Console) -> None:
    """A/B against the base, merge into the base, export for ComfyUI: what a user does next."""
    from acetune.adapters.comfyui import export_comfyui
    from acetune.adapters.merge import merge_into_model
    from acetune.generate import Studio, Track, take_paths, write_takes

    studio = Studio.open(checkpoint_dir, device="auto")
    track = Track(f"{DEMO_TAG}, {AUDITION_PROMPT}", bpm=120, duration_s=AUDITION_SECONDS)
    settings = studio.settings()
    seeds = [DEMO_SEED]
    extra = {"model": str(studio.dit_folder), "variant": studio.variant.name}
    base_audio = studio.render(track, seeds, settings)
    write_takes(base_audio, take_paths(out / "ab", "base", seeds, "wav"), seeds, track=track, settings=settings,
                extra={**extra, "adapters": []})
    studio.add_adapter(adapter, 1.0)
    tuned_audio = studio.render(track, seeds, settings)
    write_takes(tuned_audio, take_paths(out / "ab", "adapter", seeds, "wav"), seeds, track=track, settings=settings,
                extra={**extra, "adapters": [{"path": str(adapter), "strength": 1.0}]})
    console.print(f"7. A/B with the same seed and prompt, base vs adapter: [bold]{printable(out / 'ab')}[/]")
    merged = merge_into_model(studio.dit_folder, [(adapter, 1.0)], out / "merged")
    console.print(f"8. merged the adapter into the base (official layout: config.json, model.safetensors, "
                  f"silence_latent.pt): [bold]{printable(merged)}[/]")
    exported = export_comfyui(adapter, out / "export" / f"{DEMO_TAG}_comfyui.safetensors")
    console.print(f"9. ComfyUI LoRA (one file, alpha baked in; strength 1.0 = as trained): "
                  f"[bold]{printable(exported)}[/]")
    console.print(f"next: acetune generate --checkpoint-dir {printable(checkpoint_dir)} "
                  f"--adapter {printable(adapter)} "
                  f"--caption \"{DEMO_TAG}, your idea here\"")
