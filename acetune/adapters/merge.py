"""Merge adapters into a base model and save a model folder that loads without them.

The merged folder is the official layout (config.json, model.safetensors, silence_latent.pt and
the base's other files), a drop-in variant for the ACE-Step app, ComfyUI's converters and
`load_model`; or, with `format="diffusers"`, a whole diffusers `AceStepPipeline` folder (the base
bundle's VAE, text encoder and tokenizer copied in) for `AceStepPipeline.from_pretrained`. The
base may be in either layout. The adapters
are applied with `AdapterPatcher`, so the math is the same as when generating with them. The
model is loaded in the dtype it is saved in: each patched weight is computed in float32 and
rounded once, which is what loading in float32 and saving in the smaller dtype would give.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from acetune.adapters.patcher import AdapterPatcher, _default_name
from acetune.errors import CheckpointWriteError, ConfigError
from acetune.model.bundle import resolve_bundle
from acetune.model.checkpoint import COMPONENTS, available_components, checkpoint_weights, load_model, save_model
from acetune.model.diffusers_layout import is_pipeline
from acetune.model.diffusers_writer import parts_of_bundle, save_pipeline
from acetune.model.hub import resolve_checkpoint

log = logging.getLogger(__name__)
_STORED = {"F32": "fp32", "BF16": "bf16", "F16": "fp16"}
FORMATS = ("official", "diffusers")


def merge_into_model(model_folder: str | Path, adapters: list[tuple[str | Path, float]], out_folder: str | Path, *,
                     dtype: str | None = None, overwrite: bool = False, format: str = "official") -> Path:
    """Patch each (adapter, strength) into the model at `model_folder` in order and save it to `out_folder`.

    `dtype` (fp32/bf16/fp16) defaults to the dtype the base decoder is stored in. `out_folder`
    must not be the base folder (nor contain it); an existing one is replaced only with `overwrite`.
    `format` is "official" or "diffusers" (a pipeline folder; the base needs its VAE and text
    encoder beside it, or is itself a pipeline).
    """
    if not adapters:
        raise ConfigError("no adapters to merge", fix="pass at least one adapter folder or file with its strength")
    if format not in FORMATS:
        raise ConfigError(f"unknown model format {format!r}", fix=f"choose {' or '.join(FORMATS)}")
    out = Path(out_folder).expanduser()
    source = resolve_checkpoint(model_folder)
    if out.resolve() == source.resolve() or out.resolve() in source.resolve().parents:
        raise ConfigError("the merged model would overwrite the base model it is made from", path=out,
                          fix="choose a new output folder")
    if out.exists() and not overwrite:  # checked before minutes of loading, save_model checks again
        raise CheckpointWriteError("the output folder already exists", path=out,
                                   fix="choose a new folder or pass overwrite=True / --overwrite")
    components = available_components(source)
    if format == "official" and components != COMPONENTS:
        raise ConfigError("this diffusers pipeline has no audio_tokenizer/audio_token_detokenizer, which an official "
                          "folder must hold", path=source, fix="merge with --format diffusers")
    parts = parts_of_bundle(resolve_bundle(source)) if format == "diffusers" else None  # before minutes of loading
    save_dtype = dtype if dtype is not None else _stored_dtype(source)
    loaded = load_model(source, dtype=save_dtype, components=components)
    patcher = AdapterPatcher(loaded.model.decoder, variant=loaded.variant.name)
    for index, (path, strength) in enumerate(adapters):
        record = patcher.load(path, strength, name=f"{index}:{_default_name(Path(path))}")
        for warning in record.warnings:
            log.warning("%s", warning)
    if parts is not None:
        return save_pipeline(loaded.model, out, silence_latent=loaded.silence_latent, parts=parts, dtype=save_dtype,
                             overwrite=overwrite)
    # an official base's side files (modeling code the ACE-Step app runs) are copied; a pipeline has none
    return save_model(loaded.model, out, silence_latent=loaded.silence_latent,
                      copy_from=None if is_pipeline(source) else loaded.folder, dtype=save_dtype, overwrite=overwrite)


def _stored_dtype(folder: Path) -> str:
    """The dtype most decoder tensors are stored in (the official checkpoints are bf16)."""
    stored = Counter(dtype for key, dtype in checkpoint_weights(folder).dtypes.items() if key.startswith("decoder."))
    if not stored:
        return "fp32"
    return _STORED.get(stored.most_common(1)[0][0], "fp32")
