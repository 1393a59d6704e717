"""Export an adapter as one safetensors file that ComfyUI's ACE-Step 1.5 LoRA loader reads.

ComfyUI maps every decoder weight `diffusion_model.decoder.<path>.weight` to the LoRA prefixes
`base_model.model.<path>` and `lycoris_<path with _>` (and the full `diffusion_model.decoder.<path>`),
and patches W += strength * (alpha / rank) * up @ down, with alpha/rank = 1 when `.alpha` is
absent. A raw PEFT file would therefore load without its lora_alpha/r factor; we write
`lora_down`/`lora_up` plus a float32 `.alpha` equal to the module's effective scale times its
rank (alpha_pattern and rsLoRA baked in), so strength 1 in ComfyUI means what it meant in training.

DoRA: PEFT's `lora_magnitude_vector` [out] becomes `.dora_scale` reshaped to [out, 1]. ComfyUI's
`weight_decompose` (comfy/weight_adapter/base.py) picks the per-output-row norm exactly when
`dora_scale.shape[0]` equals the weight's row count, which is PEFT's DoRA axis; a 1-D [out]
tensor would broadcast against its [out, 1] norm into [out, out] (ComfyUI issue #12938). Strength
there is lerp(W, W_dora, s), as in acetune's patcher. Known deviation: ComfyUI's output-axis
branch currently divides by ||W|| instead of ||W + ΔW|| (fix proposed in ComfyUI PR #15458), so
a DoRA export is exact in acetune and close (not exact) in ComfyUI until that lands.

LoKr/LoHa files pass through unchanged (`lycoris_*` keys are already in ComfyUI's map); a full
fine-tune is not an adapter ComfyUI can patch, so it is refused with a pointer to merging.
"""

from __future__ import annotations

from pathlib import Path

import torch

from acetune.adapters.diffusers_header import METADATA_KEY as DIFFUSERS_KEY
from acetune.adapters.formats import AdapterFile, read_adapter
from acetune.adapters.safetensors_io import read_safetensors
from acetune.adapters.single_file import check_output_file, write_output_file
from acetune.errors import ConfigError

PREFIX_CHOICES = ("base_model.model", "diffusion_model.decoder")


def export_comfyui(adapter_path: str | Path, out_file: str | Path, *, prefix: str = "base_model.model",
                   overwrite: bool = False) -> Path:
    """Write `adapter_path` (any format `read_adapter` reads) as a ComfyUI LoRA file; returns `out_file`.

    `prefix` names LoRA/DoRA keys; LoKr/LoHa keep their `lycoris_*` keys whatever it says.
    """
    out = Path(out_file)
    prefix = prefix.rstrip(".")
    if prefix not in PREFIX_CHOICES:
        raise ConfigError(f"ComfyUI maps ACE-Step LoRA keys only under {' or '.join(PREFIX_CHOICES)}, not {prefix!r}")
    check_output_file(out, overwrite=overwrite, tool="ComfyUI")
    adapter = read_adapter(adapter_path)
    tensors = _comfyui_tensors(adapter, prefix)
    carried = {k: v for k, v in adapter.metadata.items() if k != DIFFUSERS_KEY}  # describes the PEFT keys, not these
    metadata = {**carried, "format": "comfyui", "source_format": adapter.format}
    write_output_file(tensors, out, metadata, tool="ComfyUI")
    return out


def _comfyui_tensors(adapter: AdapterFile, prefix: str) -> dict[str, torch.Tensor]:
    if adapter.kind == "full":
        raise ConfigError(f"{adapter.path.name} is a full fine-tune, not an adapter ComfyUI can patch",
                          path=adapter.path, fix="merge it into the base model instead (`acetune merge`) "
                                                 "and load that folder")
    if adapter.kind in ("lokr", "loha"):
        return read_safetensors(adapter.path)[0]  # pass-through: ComfyUI reads LyCORIS keys as they are
    replaced = sorted(d.target for d in adapter.deltas.values() if d.kind == "full")
    if replaced:
        raise ConfigError(f"the adapter also trained biases (e.g. {replaced[0]}), which a ComfyUI LoRA cannot carry",
                          path=adapter.path, fix="merge it into the base model instead (`acetune merge`)")
    tensors: dict[str, torch.Tensor] = {}
    for delta in adapter.deltas.values():
        stem = f"{prefix}.{delta.module}"
        down, up = delta.tensors["lora_down"], delta.tensors["lora_up"]
        tensors[f"{stem}.lora_down.weight"] = down
        tensors[f"{stem}.lora_up.weight"] = up
        tensors[f"{stem}.alpha"] = torch.tensor(delta.scale * down.shape[0], dtype=torch.float32)
        if "dora_scale" in delta.tensors:
            magnitude = delta.tensors["dora_scale"]  # PEFT's [out] -> [out, 1]; a 2-D one keeps its axis
            tensors[f"{stem}.dora_scale"] = (magnitude.reshape(up.shape[0], *[1] * (down.dim() - 1))
                                             if magnitude.dim() == 1 else magnitude)
    return tensors

