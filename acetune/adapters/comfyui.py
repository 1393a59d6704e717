"""Export an adapter as one safetensors file that ComfyUI's ACE-Step 1.5 LoRA loader reads.

ComfyUI maps every decoder weight `diffusion_model.decoder.<path>.weight` to the LoRA prefixes
`base_model.model.<path>` and `lycoris_<path with _>` (and the full `diffusion_model.decoder.<path>`),
and patches W += strength * (alpha / rank) * up @ down, with alpha/rank = 1 when `.alpha` is
absent. A raw PEFT file would therefore load without its lora_alpha/r factor; we write
`lora_down`/`lora_up` plus a float32 `.alpha` equal to the module's effective scale times its
rank (alpha_pattern and rsLoRA baked in), so strength 1 in ComfyUI means what it meant in training.

DoRA (and LyCORIS with a `dora_scale`): ComfyUI's `weight_decompose` (comfy/weight_adapter/base.py)
divides by ||W|| instead of ||W + ΔW|| on the output axis (older releases used the input axis), so a
factor export plays the weight change 12-32 % off. The default export is therefore exact: ComfyUI's
`<prefix>.<module>.diff` (and `.diff_b` for a bias) keys hold the full difference W_adapted - W,
which its loader adds as W += strength * diff in float32 before rounding to the model's dtype
(comfy/lora.py `load_lora` and `calculate_weight`, patch type "diff"). That is lerp(W, W_adapted,
strength), acetune's DoRA strength rule, but it needs the base model's weights, is tied to that
base, and costs the size of the adapted weights (`diff_bytes`). Stored in fp32 the differences
give ComfyUI the weights acetune computes (a bf16 model: equal but for double rounding, 12 of
98,304 elements one ulp apart on the tiny test model); fp16 halves the size but rounds 13 % of
the elements one bf16 ulp differently there. The
factor export stays behind `dora_as_lora=True` (`--dora-as-lora`), with a warning: PEFT's
`lora_magnitude_vector` [out] becomes `.dora_scale` [out, 1], the shape ComfyUI's output-axis
branch needs (a 1-D one would broadcast into [out, out], ComfyUI issue #12938).

LoKr/LoHa files in LyCORIS's naming pass through unchanged; other namings (kohya) are renamed
to `lycoris_*`. A full fine-tune is not an adapter ComfyUI can patch: it is refused with a
pointer to merging.

Default file name: `<run>_step<N>_comfyui.safetensors` in the run folder (export_names.py).
"""

from __future__ import annotations

from pathlib import Path

import torch

from acetune.adapters.diffusers_header import METADATA_KEY as DIFFUSERS_KEY
from acetune.adapters.formats import AdapterFile, read_adapter
from acetune.adapters.kinds import LYCORIS, facts, kinds_of
from acetune.adapters.safetensors_io import read_safetensors
from acetune.adapters.single_file import check_output_file, write_output_file
from acetune.config import AdapterKind
from acetune.errors import ConfigError, ModelLoadError
from acetune.model.checkpoint import checkpoint_weights
from acetune.model.weights import read_tensors

PREFIX_CHOICES = ("base_model.model", "diffusion_model.decoder")
DIFF_DTYPES = {"fp32": torch.float32, "fp16": torch.float16}  # fp32: exact; fp16: half the size, ~1 ulp off
DORA_AS_LORA_WARNING = ("--dora-as-lora: ComfyUI applies a DoRA's weight change 12–32 % off (it normalises by "
                        "the base weight's norm); the default full-difference export is exact")


def weight_decomposed(adapter: AdapterFile) -> bool:
    """DoRA, or a LyCORIS adapter with `dora_scale`: the kinds ComfyUI's own math gets wrong."""
    return any("dora_scale" in d.tensors for d in adapter.deltas.values())


def diff_bytes(adapter: AdapterFile, dtype: str = "fp32") -> int:
    """Size of the exact (full-difference) export: every patched tensor in `dtype`."""
    size = torch.empty((), dtype=DIFF_DTYPES[dtype]).element_size()
    return sum(delta.patched_numel for delta in adapter.deltas.values()) * size


def factor_bytes(adapter: AdapterFile) -> int:
    """Size of the factor (LoRA-style) export, for comparison."""
    return sum(t.numel() * t.element_size() for d in adapter.deltas.values() for t in d.tensors.values())


def export_comfyui(adapter: str | Path | AdapterFile, out_file: str | Path, *, prefix: str = "base_model.model",
                   base: str | Path | None = None, dora_as_lora: bool = False, diff_dtype: str = "fp32",
                   alpha: float | None = None, overwrite: bool = False) -> Path:
    """Write `adapter` (any format `read_adapter` reads, or one it read) as a ComfyUI LoRA file; returns `out_file`.

    `prefix` names LoRA/DoRA keys; LoKr/LoHa keep `lycoris_*` keys whatever it says. `base` is the
    DiT folder the adapter was trained on, needed for the exact export of a weight-decomposed
    adapter (DoRA) unless `dora_as_lora`. `alpha` applies to files that state none.
    """
    out = Path(out_file)
    prefix = prefix.rstrip(".")
    if prefix not in PREFIX_CHOICES:
        raise ConfigError(f"ComfyUI maps ACE-Step LoRA keys only under {' or '.join(PREFIX_CHOICES)}, not {prefix!r}")
    if diff_dtype not in DIFF_DTYPES:
        raise ConfigError(f"the difference dtype must be one of {', '.join(DIFF_DTYPES)}, not {diff_dtype!r}")
    check_output_file(out, overwrite=overwrite, tool="ComfyUI")
    adapter = adapter if isinstance(adapter, AdapterFile) else read_adapter(adapter, alpha=alpha)
    carried = {k: v for k, v in adapter.metadata.items() if k != DIFFUSERS_KEY}  # describes the PEFT keys, not these
    metadata = {**carried, "format": "comfyui", "source_format": adapter.format}
    if weight_decomposed(adapter) and not dora_as_lora:
        tensors, base_name = _difference_tensors(adapter, prefix, base, DIFF_DTYPES[diff_dtype])
        metadata.update(comfyui_patch="diff", diff_base_model=base_name, source_kind=str(adapter.kind))
    else:
        tensors = _comfyui_tensors(adapter, prefix)
    write_output_file(tensors, out, metadata, tool="ComfyUI")
    return out


def _comfyui_tensors(adapter: AdapterFile, prefix: str) -> dict[str, torch.Tensor]:
    """The factor export: lora_down/lora_up/alpha (and dora_scale), or LyCORIS keys."""
    row = facts(adapter.kind)
    if row is not None and not row.comfyui:
        raise ConfigError(f"{adapter.path.name} is a {row.display}, not an adapter ComfyUI can patch",
                          path=adapter.path, fix="merge it into the base model instead (`acetune merge`) "
                                                 "and load that folder")
    if row is None or row.backend == LYCORIS and adapter.format == "lycoris":
        return read_safetensors(adapter.path)[0]  # pass-through: ComfyUI reads these keys as they are
    replaced = sorted(d.target for d in adapter.deltas.values() if d.kind == AdapterKind.FULL)
    if replaced:
        raise ConfigError(f"the adapter also trained biases (e.g. {replaced[0]}), which a ComfyUI LoRA cannot carry",
                          path=adapter.path, fix="merge it into the base model instead (`acetune merge`)")
    tensors: dict[str, torch.Tensor] = {}
    for delta in adapter.deltas.values():
        if delta.kind in kinds_of(LYCORIS):  # e.g. kohya-named LyCORIS: ComfyUI needs lycoris_<path with _>
            stem = "lycoris_" + delta.module.replace(".", "_")
            tensors.update({f"{stem}.{name}": value for name, value in delta.tensors.items()})
            if delta.alpha is not None:
                tensors[f"{stem}.alpha"] = torch.tensor(delta.alpha, dtype=torch.float32)
            continue
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


def _difference_tensors(adapter: AdapterFile, prefix: str, base: str | Path | None,
                        dtype: torch.dtype) -> tuple[dict[str, torch.Tensor], str]:
    """`<prefix>.<module>.diff` / `.diff_b` = W_adapted - W for every patched tensor, from the base's weights."""
    if base is None:
        raise ConfigError(f"a {adapter.kind} adapter is weight-decomposed: its exact ComfyUI export stores full "
                          "weight differences, which need the base model's weights",
                          path=adapter.path, fix="pass --checkpoint-dir (and --model) of the model it was trained "
                                                 "on, or --dora-as-lora for a small file ComfyUI plays 12–32 % off")
    folder = Path(base)
    weights = checkpoint_weights(folder)  # official or diffusers layout, official names
    tensors: dict[str, torch.Tensor] = {}
    for delta in adapter.deltas.values():
        key = f"decoder.{delta.target}"
        if key not in weights.key_to_file:
            raise ModelLoadError(f"the base model has no {key}; the adapter was made for another model",
                                 path=folder, fix="pass the model the adapter was trained on")
        original = read_tensors(weights, [key], torch.float32, "cpu")[key]
        why = delta.mismatch(original.shape)
        if why is not None:
            raise ModelLoadError(f"shape mismatch at {delta.target}: {why}; made for another base model", path=folder,
                                 fix="pass the model the adapter was trained on")
        suffix = "diff" if delta.param == "weight" else "diff_b"
        tensors[f"{prefix}.{delta.module}.{suffix}"] = (delta.merged_weight(original, 1.0) - original).to(dtype)
    return tensors, folder.name
