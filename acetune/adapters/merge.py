"""Merge adapters into a base model and save an official-layout folder that loads without them.

The merged folder (config.json, model.safetensors, silence_latent.pt and the base's other files)
is a drop-in variant for the ACE-Step app, ComfyUI's converters and `load_model`. The adapters
are applied with `AdapterPatcher`, so the math is the same as when generating with them. The
model is loaded in the dtype it is saved in: each patched weight is computed in float32 and
rounded once, which is what loading in float32 and saving in the smaller dtype would give.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from acetune.adapters.formats import inspect_adapter
from acetune.adapters.patcher import AdapterPatcher, _default_name
from acetune.errors import CheckpointWriteError, ConfigError
from acetune.model.checkpoint import load_model, save_model
from acetune.model.hub import resolve_checkpoint
from acetune.model.weights import find_weight_files

log = logging.getLogger(__name__)
_STORED = {"F32": "fp32", "BF16": "bf16", "F16": "fp16"}


def merge_into_model(model_folder: str | Path, adapters: list[tuple[str | Path, float]], out_folder: str | Path, *,
                     dtype: str | None = None, overwrite: bool = False, alpha: float | None = None) -> Path:
    """Patch each (adapter, strength) into the model at `model_folder` in order and save it to `out_folder`.

    `dtype` (fp32/bf16/fp16) defaults to the dtype the base decoder is stored in. `out_folder`
    must not be the base folder (nor contain it); an existing one is replaced only with `overwrite`.
    `alpha` applies to adapters whose files state none (see `read_adapter`).
    """
    if not adapters:
        raise ConfigError("no adapters to merge", fix="pass at least one adapter folder or file with its strength")
    out = Path(out_folder).expanduser()
    source = resolve_checkpoint(model_folder)
    if out.resolve() == source.resolve() or out.resolve() in source.resolve().parents:
        raise ConfigError("the merged model would overwrite the base model it is made from", path=out,
                          fix="choose a new output folder")
    if out.exists() and not overwrite:  # checked before minutes of loading, save_model checks again
        raise CheckpointWriteError("the output folder already exists", path=out,
                                   fix="choose a new folder, or pass --overwrite")
    for path, _ in adapters:  # names, headers and alpha checked before minutes of loading
        inspect_adapter(path, alpha=alpha)
    save_dtype = dtype if dtype is not None else _stored_dtype(source)
    loaded = load_model(source, dtype=save_dtype)
    patcher = AdapterPatcher(loaded.model.decoder, variant=loaded.variant.name)
    for index, (path, strength) in enumerate(adapters):
        record = patcher.load(path, strength, name=f"{index}:{_default_name(Path(path))}", alpha=alpha)
        for warning in record.warnings:
            log.warning("%s", warning)
    return save_model(loaded.model, out, silence_latent=loaded.silence_latent, copy_from=loaded.folder,
                      dtype=save_dtype, overwrite=overwrite)


def _stored_dtype(folder: Path) -> str:
    """The dtype most decoder tensors are stored in (the official checkpoints are bf16)."""
    stored = Counter(dtype for key, dtype in find_weight_files(folder).dtypes.items() if key.startswith("decoder."))
    if not stored:
        return "fp32"
    return _STORED.get(stored.most_common(1)[0][0], "fp32")
