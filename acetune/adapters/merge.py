"""Merge adapters into a base model and save a model folder that loads without them.

The merged folder is the official layout (config.json, model.safetensors, silence_latent.pt and
the base's other files), a drop-in variant for the ACE-Step app, ComfyUI's converters and
`load_model`; or, with `format="diffusers"`, a whole diffusers `AceStepPipeline` folder (the base
bundle's VAE, text encoder and tokenizer copied in) for `AceStepPipeline.from_pretrained`. The
base may be in either layout (model/convert.py loads and writes it). The adapters are applied
with `AdapterPatcher`, so the math is the same as when generating with them. The model is loaded
in the dtype it is saved in: each patched weight is computed in float32 and rounded once, which
is what loading in float32 and saving in the smaller dtype would give.
"""

from __future__ import annotations

import logging
from pathlib import Path

from acetune.adapters.formats import inspect_adapter
from acetune.adapters.patcher import AdapterPatcher, _default_name
from acetune.errors import ConfigError
from acetune.model.convert import open_rewrite, save_rewrite

log = logging.getLogger(__name__)


def merge_into_model(model_folder: str | Path, adapters: list[tuple[str | Path, float]], out_folder: str | Path, *,
                     dtype: str | None = None, overwrite: bool = False, format: str = "official",
                     alpha: float | None = None) -> Path:
    """Patch each (adapter, strength) into the model at `model_folder` in order and save it to `out_folder`.

    `dtype` (fp32/bf16/fp16) defaults to the dtype the base decoder is stored in. `out_folder`
    must not be the base folder (nor contain it); an existing one is replaced only with `overwrite`.
    `format` is "official" or "diffusers" (a pipeline folder; the base needs its VAE and text
    encoder beside it, or is itself a pipeline). `alpha` applies to adapters whose files state
    none (see `read_adapter`).
    """
    if not adapters:
        raise ConfigError("no adapters to merge", fix="pass at least one adapter folder or file with its strength")
    for path, _ in adapters:  # names, headers and alpha checked before minutes of loading
        inspect_adapter(path, alpha=alpha)
    rewrite = open_rewrite(model_folder, out_folder, format=format, dtype=dtype, overwrite=overwrite)
    patcher = AdapterPatcher(rewrite.loaded.model.decoder, variant=rewrite.loaded.variant.name)
    for index, (path, strength) in enumerate(adapters):
        record = patcher.load(path, strength, name=f"{index}:{_default_name(Path(path))}", alpha=alpha)
        for warning in record.warnings:
            log.warning("%s", warning)
    return save_rewrite(rewrite, overwrite=overwrite)
