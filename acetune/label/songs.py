"""`label_songs`: the one call behind `acetune dataset label` and the web app: scan, load, label."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from acetune.errors import ConfigError
from acetune.events import Event, Skipped
from acetune.label.base import Labeller
from acetune.label.fields import DEFAULT_FIELDS
from acetune.label.lm import LmSettings
from acetune.label.run import LabellerReady, label_dataset

LABELLER_KINDS = ("lm", "whisper", "omni", "openai", "gemini")


@dataclass(frozen=True)
class LabelOptions:
    """Everything `label_songs` needs besides the folders. Defaults are the command's defaults."""

    with_: tuple[str, ...] = ("lm",)  # labellers, in order: lm, whisper
    fields: tuple[str, ...] = DEFAULT_FIELDS
    overwrite: bool = False  # replace values the user wrote
    dry_run: bool = False  # report, write nothing
    device: str = "auto"
    lm: str | None = None  # LM variant ("1.7B" or the folder name); None: the largest that fits
    lm_settings: LmSettings = LmSettings()
    whisper: str | None = None  # a Whisper folder or Hub id; None: the whisper*/ folder in the checkpoints folder
    language: str | None = None  # the vocal language Whisper transcribes (an ACE-Step code); None: detected
    model: str | None = None  # the DiT folder whose tokenizer makes the codes (default as everywhere)
    openai_model: str | None = None  # for --with openai; None: openai_captioner.DEFAULT_MODEL
    gemini_model: str | None = None  # for --with gemini; None: gemini_captioner.DEFAULT_MODEL
    omni_model: str | None = None  # for --with omni (folder or Hub id); None: a Qwen2.5-Omni*/ folder, else the default
    omni_bits: int | None = None  # for --with omni: 4 or 8 (bitsandbytes, CUDA only); None: full weights
    isolate_vocals: bool = False  # Whisper hears only the vocals stem (demucs, extra acetune[separate])
    separator: str | None = None  # a demucs model name or .th/.yaml file; None: vocals.DEFAULT_SEPARATOR


def label_songs(folder: Path | str, checkpoint_dir: Path | str, options: LabelOptions = LabelOptions()
                ) -> Iterator[Event]:
    """Label every song `acetune dataset list` sees in `folder`; yields `LabellerReady`, `Started`,
    `Labelled` / `AlreadyLabelled` / `Skipped` per song, `Progressed` and `Finished` (see `run`)."""
    from acetune.data.dataset import scan_dataset

    check_kinds(options.with_)
    check_vocals(options)
    result = scan_dataset(folder)
    labellers = open_labellers(Path(checkpoint_dir), options)
    for lab in labellers:
        yield LabellerReady(lab.kind, lab.source, lab.detail)
    for problem in result.problems:
        yield Skipped(problem.path, problem.reason)
    yield from label_dataset(result.dataset, labellers, fields=options.fields, overwrite=options.overwrite,
                             dry_run=options.dry_run)


def check_kinds(kinds: Sequence[str]) -> None:
    unknown = [k for k in kinds if k not in LABELLER_KINDS]
    if unknown or not kinds:
        raise ConfigError(f"--with {', '.join(unknown) or '(nothing)'}: no such labeller",
                          fix=f"use --with with one or more of: {', '.join(LABELLER_KINDS)}")


def check_vocals(options: LabelOptions) -> None:
    """--isolate-vocals feeds Whisper only; --separator means nothing without it."""
    if options.isolate_vocals and "whisper" not in options.with_:
        raise ConfigError("--isolate-vocals only changes what Whisper hears", fix="add --with whisper")
    if options.separator and not options.isolate_vocals:
        raise ConfigError(f"--separator {options.separator} is used only with --isolate-vocals",
                          fix="add --isolate-vocals, or leave --separator out")


def open_labellers(checkpoint_dir: Path, options: LabelOptions) -> list[Labeller]:
    """Load the labellers named in `options.with_` (each model once, on the chosen device)."""
    from acetune.model.devices import resolve_device

    device = resolve_device(options.device)
    labellers: list[Labeller] = []
    for kind in dict.fromkeys(options.with_):
        if kind == "lm":
            labellers.append(_open_lm(checkpoint_dir, options, device))
        elif kind == "whisper":
            from acetune.label.vocals import open_separator
            from acetune.label.whisper import open_whisper

            isolator = open_separator(options.separator, device) if options.isolate_vocals else None
            labellers.append(open_whisper(checkpoint_dir, options.whisper, device, options.language, isolator))
        elif kind == "omni":
            from acetune.label.omni import open_omni

            labellers.append(open_omni(checkpoint_dir, options.omni_model, device, lm_dtype(device), options.omni_bits))
        elif kind == "openai":
            from acetune.label.openai_captioner import OpenAICaptioner

            labellers.append(OpenAICaptioner(options.openai_model))
        else:
            from acetune.label.gemini_captioner import GeminiCaptioner

            labellers.append(GeminiCaptioner(options.gemini_model))
    return labellers


def _open_lm(checkpoint_dir: Path, options: LabelOptions, device: torch.device) -> Labeller:
    from acetune.label.codes import AudioCoder
    from acetune.label.lm import LmLabeller
    from acetune.label.lm_folders import choose_lm

    dtype = lm_dtype(device)
    choice = choose_lm(checkpoint_dir, options.lm, device, dtype)
    coder = AudioCoder(checkpoint_dir, device=device, model=options.model)
    return LmLabeller(choice, coder, dtype=dtype, settings=options.lm_settings)


def lm_dtype(device: torch.device) -> torch.dtype:
    """bf16 on a GPU that has it (the released weights are bf16), float32 elsewhere."""
    from acetune.config import Precision
    from acetune.model.devices import resolve_precision

    return resolve_precision(Precision.AUTO, device)
