"""The command lines the app hands to child processes: the CLI's own commands, with the page's values.

Each builder returns the arguments after `acetune`, so what the app runs is what a user could type
(the Jobs list shows it), and every check and error is the CLI's.
"""

from __future__ import annotations

from pathlib import Path

from acetune.errors import ConfigError


def preprocess_args(songs: Path, checkpoints: Path, cache: Path, *, tag: str, tag_position: str, rebuild: bool,
                    overrides: list[str]) -> list[str]:
    """`acetune preprocess`: the paths and tag as flags, each changed option as `--set preprocess.key=value`."""
    args = ["preprocess", "--audio-dir", str(songs), "--checkpoint-dir", str(checkpoints), "--out", str(cache),
            "--tag-position", tag_position]
    if tag:
        args += ["--tag", tag]
    for override in overrides:
        args += ["--set", override]
    return args + (["--rebuild"] if rebuild else [])


def train_args(config_file: Path) -> list[str]:
    return ["train", "--config", str(config_file)]


def resume_args(run_dir: Path) -> list[str]:
    """Resume from the run's own settings (its config.resolved.toml) and latest checkpoint."""
    return ["train", "--config", str(run_dir / "config.resolved.toml"), "--resume-from", "latest"]


def analyze_args(songs: Path, *, overwrite: bool) -> list[str]:
    return ["dataset", "analyze", str(songs)] + (["--overwrite"] if overwrite else [])


LABELLERS = ("lm", "whisper")  # the local labellers the page offers (the cloud ones need keys set outside the app)


def label_args(songs: Path, checkpoints: Path, *, labellers: list[str], dry_run: bool, overwrite: bool,
               device: str = "auto") -> list[str]:
    """`acetune dataset label`: each chosen labeller once (`--with`); none chosen is refused (the CLI would
    quietly fall back to the LM)."""
    if not labellers:
        raise ConfigError("no labeller chosen", fix=f"tick at least one of {', '.join(LABELLERS)}")
    args = ["dataset", "label", str(songs), "--checkpoint-dir", str(checkpoints), "--device", device]
    for name in labellers:
        args += ["--with", name]
    return args + (["--dry-run"] if dry_run else []) + (["--overwrite"] if overwrite else [])


def generate_args(checkpoints: Path, out: Path, *, caption: str, lyrics: str, language: str, bpm: int | None,
                  key: str, time_signature: str, duration: float, seed: int, batch: int, steps: int | None,
                  shift: float | None, guidance: float | None, adapters: list[tuple[Path, float]], name: str,
                  device: str) -> list[str]:
    args = ["generate", "--checkpoint-dir", str(checkpoints), "--out", str(out), "--caption", caption,
            "--language", language, "--duration", f"{duration:g}", "--seed", str(seed), "--batch", str(batch),
            "--name", name, "--device", device]
    if lyrics:
        args += ["--lyrics", lyrics]
    optional = {"--bpm": bpm, "--key": key or None, "--time-signature": time_signature or None, "--steps": steps,
                "--shift": shift, "--guidance": guidance}
    for flag, value in optional.items():
        if value is not None:
            args += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    for path, strength in adapters:
        args += ["--adapter", f"{path}@{strength:g}"]
    return args


def merge_args(adapter: Path, strength: float, checkpoints: Path, out: Path, *, layout: str) -> list[str]:
    return ["merge", "--adapter", f"{adapter}@{strength:g}", "--checkpoint-dir", str(checkpoints), "--out", str(out),
            "--format", layout]


def export_args(tool: str, adapter: Path, out: Path | None) -> list[str]:
    """`export-comfyui` or `export-diffusers` (default output: beside the run, as the CLI names it)."""
    return [f"export-{tool}", str(adapter)] + ([] if out is None else ["--out", str(out)])


def info_args(adapter: Path) -> list[str]:
    return ["adapter", "info", str(adapter)]
