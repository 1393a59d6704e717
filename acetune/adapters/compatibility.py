"""Which other tools load an adapter file, and how well: the "loads in" list of `acetune adapter info`.

Every verdict rests on a fact read in the tool's own code (recorded in the shared spec,
training.md sections 3.4, 4.4 and 5, or read through the code index), never on a guess:
- PEFT: `PeftModel.from_pretrained(decoder, folder)` needs `adapter_config.json` beside
  `adapter_model.safetensors`; it reads no other key naming.
- The official ACE-Step app: `handler.load_lora(folder)` is `PeftModel.from_pretrained` on a folder
  holding adapter_config.json (f30aee4); later versions (acestep/core/generation/handler/lora/
  lifecycle.py) also load LoKr: `lokr_weights.safetensors`, or a file whose header has `lokr_config`.
- ComfyUI (comfy/lora.py): ACE-Step 1.5 LoRA prefixes `base_model.model.<path>` and
  `lycoris_<path with _>`, the generic `diffusion_model.decoder.<path>` and kohya `lora_unet_decoder_<...>`;
  W += strength * (alpha/rank) * up @ down with alpha/rank = 1 when `.alpha` is absent; `.diff` /
  `.diff_b` add a full weight / bias difference. Its DoRA (`weight_decompose`) divides by ||W||
  instead of ||W + ΔW|| on the output axis (older releases used the input axis), 12-32 % off.
- LyCORIS: `create_lycoris_from_weights` rebuilds a network from `lycoris_*` keys.
- diffusers 0.42.1 `AceStepPipeline`: what diffusers_export.py says (LoRA/DoRA with its
  `lora_adapter_metadata` header, LoKr; no LoHa, full fine-tunes or trained biases).
"""

from __future__ import annotations

from dataclasses import dataclass

from acetune.adapters.diffusers_export import diffusers_loading
from acetune.adapters.formats import AdapterFile, AdapterHeader
from acetune.adapters.kinds import DIFF, KINDS, PEFT_CONFIG
from acetune.config import AdapterKind

COMFYUI_DORA_ERROR = "12–32 %"  # the error of its weight change on ACE-Step DoRA adapters (issue 10)


@dataclass(frozen=True)
class Support:
    tool: str
    loads: str  # yes | approximate | no
    note: str = ""


def loads_in(header: AdapterHeader, adapter: AdapterFile | None = None) -> list[Support]:
    """One row per tool, in a fixed order. The diffusers row needs the read `adapter` (its checks look at
    tensor shapes) and is left out without it."""
    rows = [_peft(header), _ace_step_app(header), _comfyui(header), _lycoris(header)]
    return rows + ([diffusers_support(adapter)] if adapter is not None else [])


def diffusers_support(adapter: AdapterFile) -> Support:
    """Whether diffusers' AceStepPipeline loads the file as it is, and the call that does."""
    loads, how = diffusers_loading(adapter)
    return Support("diffusers", "yes" if loads else "no", how)


def _with_config(header: AdapterHeader) -> bool:
    return header.format == "peft" and header.alpha_source == PEFT_CONFIG


def _peft(header: AdapterHeader) -> Support:
    if _with_config(header):
        return Support("PEFT", "yes", "PeftModel.from_pretrained(decoder, folder)")
    if header.format == "peft":
        return Support("PEFT", "no", f"its {PEFT_CONFIG} is not beside it")
    return Support("PEFT", "no")


def _ace_step_app(header: AdapterHeader) -> Support:
    name = "ACE-Step app"
    if _with_config(header):
        return Support(name, "yes", "its LoRA loader takes this folder")
    lokr = KINDS[AdapterKind.LOKR]
    if header.kind == AdapterKind.LOKR and (header.path.name == lokr.weights_file
                                           or lokr.upstream_config in header.metadata):
        return Support(name, "yes", "app versions that load LoKr (not f30aee4)")
    if header.kind == AdapterKind.FULL:
        return Support(name, "no", "merge it (`acetune merge`); the app loads the merged model folder")
    return Support(name, "no", "it loads PEFT folders and LoKr files")


def _comfyui(header: AdapterHeader) -> Support:
    name = "ComfyUI"
    if header.kind == AdapterKind.FULL:
        return Support(name, "no", "merge it (`acetune merge`)")
    if header.format == "diffusers":  # its ACEStep15 key map has no transformer.* (diffusers) names
        return Support(name, "no", "it maps no transformer.* (diffusers) names; `acetune export-comfyui` converts")
    if header.format == "kohya" and not _kohya_comfy_spelling(header):
        return Support(name, "no", "it expects lora_unet_decoder_* names; `acetune export-comfyui` converts")
    if header.kind == DIFF:
        base = header.metadata.get("diff_base_model", "the model it was exported from")
        return Support(name, "yes", f"exact, on {base} only (full weight differences)")
    if _weight_decomposed(header):
        return Support(name, "approximate", f"its DoRA math is {COMFYUI_DORA_ERROR} off; `acetune export-comfyui "
                                            "--checkpoint-dir ...` writes an exact file")
    if header.format == "peft":
        return Support(name, "no", "it loads the weights but not lora_alpha (alpha/rank = 1); "
                                   "use `acetune export-comfyui`")
    return Support(name, "yes")


def _lycoris(header: AdapterHeader) -> Support:
    if header.format == "lycoris":
        return Support("LyCORIS", "yes", "create_lycoris_from_weights")
    return Support("LyCORIS", "no")


def _weight_decomposed(header: AdapterHeader) -> bool:
    return header.kind == AdapterKind.DORA or any("dora_scale" in parts for parts in (header.groups.modules.values()
                                                                          if header.groups else ()))


def _kohya_comfy_spelling(header: AdapterHeader) -> bool:
    keys = (key for parts in header.groups.modules.values() for key in parts.values())
    return all(key.startswith("lora_unet_decoder_") for key in keys)
