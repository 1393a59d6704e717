"""Rewrite a model in either layout: the official folder or a diffusers `AceStepPipeline` folder.

`acetune model convert` rewrites a model as it is; `acetune merge` patches adapters into the
decoder between `open_rewrite` and `save_rewrite`. The model is loaded in the dtype it is saved
in (default: the dtype its decoder is stored in, bf16 for the official checkpoints). An official
base's side files (the modeling code the ACE-Step app runs) are copied into an official output;
a pipeline has none, and a pipeline output copies the bundle's VAE, text encoder and tokenizer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from acetune.atomic import check_folder_target
from acetune.errors import CheckpointWriteError, ConfigError
from acetune.model.bundle import resolve_bundle
from acetune.model.checkpoint import (COMPONENTS, LoadedModel, available_components, checkpoint_weights, load_model,
                                      save_model)
from acetune.model.diffusers_layout import is_pipeline
from acetune.model.diffusers_writer import PipelineParts, parts_of_bundle, save_pipeline
from acetune.model.hub import resolve_checkpoint

FORMATS = ("official", "diffusers")
_STORED = {"F32": "fp32", "BF16": "bf16", "F16": "fp16"}


@dataclass
class Rewrite:
    """A model loaded to be written again as `format` into `out`."""

    loaded: LoadedModel
    out: Path
    format: str
    dtype: str
    parts: PipelineParts | None  # what a pipeline output copies; None for the official layout


def open_rewrite(model_folder: str | Path, out_folder: str | Path, *, format: str = "official",
                 dtype: str | None = None, overwrite: bool = False) -> Rewrite:
    """Check the target, then load every component the source holds. Nothing is written yet.

    `out_folder` must not be the source folder (nor contain it); an existing one is refused
    unless `overwrite`. A pipeline without the optional audio tokenizers cannot become an
    official folder, which must hold them.
    """
    if format not in FORMATS:
        raise ConfigError(f"unknown model format {format!r}", fix=f"choose {' or '.join(FORMATS)}")
    out = Path(out_folder).expanduser()
    source = resolve_checkpoint(model_folder)
    if out.resolve() == source.resolve() or out.resolve() in source.resolve().parents:
        raise ConfigError("the new model would overwrite the base model it is made from", path=out,
                          fix="choose a new output folder")
    if out.exists() and not overwrite:  # checked before minutes of loading; the writers check again
        raise CheckpointWriteError("the output folder already exists", path=out,
                                   fix="choose a new folder, or pass --overwrite")
    check_folder_target(out, overwrite=overwrite)  # a file, a read-only disk, no permission
    components = available_components(source)
    if format == "official" and components != COMPONENTS:
        raise ConfigError("this diffusers pipeline has no audio_tokenizer/audio_token_detokenizer, which an official "
                          "folder must hold", path=source, fix="write it with --format diffusers")
    parts = parts_of_bundle(resolve_bundle(source)) if format == "diffusers" else None  # before minutes of loading
    save_dtype = dtype if dtype is not None else stored_dtype(source)
    return Rewrite(load_model(source, dtype=save_dtype, components=components), out, format, save_dtype, parts)


def save_rewrite(rewrite: Rewrite, *, overwrite: bool = False) -> Path:
    loaded = rewrite.loaded
    if rewrite.parts is not None:
        return save_pipeline(loaded.model, rewrite.out, silence_latent=loaded.silence_latent, parts=rewrite.parts,
                             dtype=rewrite.dtype, overwrite=overwrite)
    return save_model(loaded.model, rewrite.out, silence_latent=loaded.silence_latent,
                      copy_from=None if is_pipeline(loaded.folder) else loaded.folder, dtype=rewrite.dtype,
                      overwrite=overwrite)


def convert_model(model_folder: str | Path, out_folder: str | Path, *, format: str, dtype: str | None = None,
                  overwrite: bool = False) -> Path:
    """The model at `model_folder` (either layout) written as `format` into `out_folder`."""
    return save_rewrite(open_rewrite(model_folder, out_folder, format=format, dtype=dtype, overwrite=overwrite),
                        overwrite=overwrite)


def stored_dtype(folder: Path) -> str:
    """The dtype most decoder tensors are stored in (the official checkpoints are bf16)."""
    stored = Counter(dtype for key, dtype in checkpoint_weights(folder).dtypes.items() if key.startswith("decoder."))
    if not stored:
        return "fp32"
    return _STORED.get(stored.most_common(1)[0][0], "fp32")
