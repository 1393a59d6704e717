"""Export an adapter as one safetensors file that diffusers' `AceStepPipeline` loads at the trained strength.

What diffusers 0.42.1 can load, read from its loaders (lora_pipeline.py `AceStepLoraLoaderMixin`,
peft.py `load_lora_adapter`, utils/peft_utils.py) and checked by tests/model/test_diffusers_pipeline.py:
- LoRA and DoRA: PEFT keys under diffusers' module names, `transformer.<module>.lora_A.weight`,
  `.lora_B.weight` and (DoRA) `.lora_magnitude_vector` [out], with the `lora_adapter_metadata`
  header giving each module's rank and alpha (diffusers_header). `pipe.load_lora_weights(file)`.
  Writing diffusers' names ourselves matters: its renaming of original ACE-Step keys only runs when
  some key holds q_proj/k_proj, so an MLP- or v/o-only PEFT file would load nothing.
- LoKr: PEFT's LoKr keys, `transformer.<module>.lokr_w1` (or `lokr_w1_a`/`_b`) and `lokr_w2` (or
  `lokr_w2_a`/`_b`). Without a header diffusers infers the `LoKrConfig` from the factor shapes with
  alpha = rank (scale 1), so the LyCORIS scale is baked into the first factor. Only
  `pipe.transformer.load_lora_adapter(file, prefix="transformer")` takes it: the pipeline's
  `load_lora_weights` refuses any key without "lora" in it.
- LoHa: diffusers has no LoHa loader at all; full fine-tunes and trained biases are no adapters it
  can carry. Those are refused with `DiffusersFormatError`; `acetune merge --format diffusers`
  bakes them into a pipeline folder instead.
"""

from __future__ import annotations

from pathlib import Path

import torch

from acetune.adapters.deltas import ModuleDelta
from acetune.adapters.diffusers_header import METADATA_KEY, PREFIX, effective_alpha, lora_metadata
from acetune.adapters.formats import AdapterFile, read_adapter
from acetune.adapters.kinds import FULL, KINDS, PEFT_CONFIG, UPSTREAM_CONFIGS, facts
from acetune.adapters.single_file import check_output_file, write_output_file
from acetune.config import AdapterKind
from acetune.errors import ConfigError
from acetune.model.diffusers_keys import module_to_diffusers

_SOURCE_KEYS = {"format", "algo", *UPSTREAM_CONFIGS, "source_format", METADATA_KEY}  # describe other keys


class DiffusersFormatError(ConfigError):
    """The adapter is of a kind diffusers' AceStepPipeline cannot load as an adapter."""


def export_diffusers(adapter: str | Path | AdapterFile, out_file: str | Path, *, alpha: float | None = None,
                     overwrite: bool = False) -> Path:
    """Write `adapter` (any format `read_adapter` reads, or one it read) as a diffusers LoRA/DoRA/LoKr file.

    `alpha` applies to files that state none (see `read_adapter`). Returns `out_file`.
    """
    out = Path(out_file)
    check_output_file(out, overwrite=overwrite, tool="diffusers")
    adapter = adapter if isinstance(adapter, AdapterFile) else read_adapter(adapter, alpha=alpha)
    tensors, header = diffusers_tensors(adapter)
    carried = {k: v for k, v in adapter.metadata.items() if k not in _SOURCE_KEYS}
    write_output_file(tensors, out, {**carried, "format": "pt", "source_format": adapter.format, **header},
                      tool="diffusers")
    return out


def diffusers_tensors(adapter: AdapterFile) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors under diffusers' names, header entries) for an adapter diffusers can load; refused otherwise."""
    refusal = unsupported_reason(adapter)
    if refusal is not None:
        raise DiffusersFormatError(refusal, path=adapter.path,
                                   fix="merge it into the model instead: acetune merge --format diffusers")
    if adapter.kind == AdapterKind.LOKR:
        return _lokr_tensors(adapter), {}
    tensors: dict[str, torch.Tensor] = {}
    modules: dict[str, tuple[int, float]] = {}
    for delta in adapter.deltas.values():
        stem = f"{PREFIX}.{module_to_diffusers(delta.module)}"
        down, up = delta.tensors["lora_down"], delta.tensors["lora_up"]
        tensors[f"{stem}.lora_A.weight"], tensors[f"{stem}.lora_B.weight"] = down, up
        if "dora_scale" in delta.tensors:
            tensors[f"{stem}.lora_magnitude_vector"] = delta.tensors["dora_scale"].reshape(up.shape[0])
        modules[delta.module] = (delta.rank, effective_alpha(delta.scale, delta.rank))
    return tensors, {METADATA_KEY: lora_metadata(modules, use_dora=adapter.kind == AdapterKind.DORA)}


def unsupported_reason(adapter: AdapterFile) -> str | None:
    """Why diffusers 0.42.1 cannot load `adapter` as an adapter, or None when `export_diffusers` can write it."""
    row = facts(adapter.kind)
    if row is None:
        return "a full weight difference (ComfyUI .diff) is not an adapter diffusers can load"
    if row.backend == FULL:
        return "a full fine-tune is not an adapter diffusers can load"
    if not row.diffusers:
        loaded = ", ".join(r.display for r in KINDS.values() if r.diffusers)
        return f"diffusers has no {row.display} loader (it loads {loaded} adapters only)"
    replaced = sorted(d.target for d in adapter.deltas.values() if d.kind == AdapterKind.FULL)
    if replaced:
        return f"the adapter also trained biases (e.g. {replaced[0]}), which a diffusers LoRA cannot carry"
    for delta in adapter.deltas.values():
        reason = _module_reason(delta)
        if reason is not None:
            return f"{delta.module}: {reason}"
    return None


def _module_reason(delta: ModuleDelta) -> str | None:
    t = delta.tensors
    if delta.kind == AdapterKind.LOKR and ("lokr_t2" in t or "dora_scale" in t):
        return "PEFT's LoKr (which diffusers uses) has no Tucker core nor weight decomposition for Linear layers"
    if delta.kind in (AdapterKind.LORA, AdapterKind.DORA) and t["lora_up"].dim() != 2:
        return "a convolution LoRA; the decoder's adapted layers are Linear"
    scale = t.get("dora_scale")
    if delta.kind == AdapterKind.DORA and not (scale.numel() == t["lora_up"].shape[0] and (scale.dim() == 1 or scale.shape[1] == 1)):
        return f"its dora_scale {list(scale.shape)} is per input column; PEFT's DoRA (diffusers') is per output row"
    return None


def _lokr_tensors(adapter: AdapterFile) -> dict[str, torch.Tensor]:
    """PEFT LoKr keys; the LyCORIS scale goes into the first Kronecker factor (diffusers loads LoKr at scale 1)."""
    tensors: dict[str, torch.Tensor] = {}
    for delta in adapter.deltas.values():
        stem = f"{PREFIX}.{module_to_diffusers(delta.module)}"
        first = "lokr_w1" if "lokr_w1" in delta.tensors else "lokr_w1_a"
        for name, value in delta.tensors.items():
            tensors[f"{stem}.{name}"] = value * delta.scale if name == first and delta.scale != 1.0 else value
    return tensors


def _call(file: str, *, lokr: bool) -> str:
    """The diffusers call that loads a diffusers adapter `file` into a pipeline `pipe`."""
    if lokr:  # the pipeline's load_lora_weights accepts only keys with "lora" in them
        return f'pipe.transformer.load_lora_adapter({file}, prefix="{PREFIX}")'
    return f"pipe.load_lora_weights({file})"


def diffusers_loading(adapter: AdapterFile) -> tuple[bool, str]:
    """(whether diffusers' AceStepPipeline loads this adapter as it is, how; or what to do instead)."""
    reason = unsupported_reason(adapter)
    if reason is not None:
        return False, f"{reason}; `acetune merge --format diffusers` bakes it into a pipeline instead"
    lokr = adapter.kind == AdapterKind.LOKR
    if adapter.format == "peft" and METADATA_KEY in adapter.metadata:
        where = "<this folder>" if adapter.alpha_source == PEFT_CONFIG else "<this file>"
        return True, f"pipe.load_lora_weights({where}), at the trained strength"
    if adapter.format == "diffusers":
        return True, _call("<this file>", lokr=lokr)
    return False, f"`acetune export-diffusers` writes FILE, then {_call('FILE', lokr=lokr)}"
