"""Adapter key names -> decoder modules: every key naming acetune reads, in one place.

Dotted names: PEFT's `base_model.model.<path>`, ComfyUI's generic `diffusion_model.decoder.<path>`,
and diffusers' `transformer.<path>` with diffusers' module names (`to_q`, `to_out.0`; mapped back
by model/diffusers_keys.py).
Underscored names (every dot of the decoder path replaced by `_`, put back here from the
decoder's known structure): LyCORIS's `lycoris_<path>`, and kohya's `lora_unet_<...>`.

Kohya naming for ACE-Step 1.5 (facts, sources read through the code index):
- ComfyUI maps `lora_unet_<state-dict key after "diffusion_model.", dots as _>` for every weight of
  every model (comfy/lora.py `model_lora_keys_unet`, generic branch). ACE-Step 1.5's decoder is
  `diffusion_model.decoder.*` there, so its kohya name is `lora_unet_decoder_<path>`, e.g.
  `lora_unet_decoder_layers_0_self_attn_q_proj.lora_down.weight` / `.lora_up.weight` / `.alpha`.
- The musubi-tuner fork with ACE-Step support (AkaneTendo25/musubi-tuner,
  networks/lora_acestep.py) writes exactly that; its older files used `lora_unet_<path>`
  (decoder-relative), which its convert_acestep_lora_to_comfy.py rewrites by adding `decoder_`.
  Upstream kohya-ss/musubi-tuner and sd-scripts have no ACE-Step network. Both spellings are read.
- `lora_te_` / `lora_te1_` / `lora_te2_` keys are sd-scripts' text-encoder LoRA. acetune patches
  only the decoder (the Qwen3 text encoder stays frozen in every ACE-Step 1.5 trainer), so those
  keys, like kohya keys of the condition encoder or audio tokenizer, are set aside by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from acetune.adapters.kinds import DIFF
from acetune.config import AdapterKind
from acetune.errors import ModelLoadError
from acetune.model.diffusers_keys import COMPONENTS, module_from_diffusers

DOTTED_PREFIXES = ("base_model.model.", "diffusion_model.decoder.")
DIFFUSERS_PREFIX = f"{COMPONENTS['decoder']}."  # diffusers' AceStepPipeline component holding the decoder
LYCORIS_PREFIX = "lycoris_"
KOHYA_PREFIXES = ("lora_unet_decoder_", "lora_unet_")  # ComfyUI's spelling first; the older one after
_KOHYA_STYLE = "lora_unet_"
TEXT_ENCODER = re.compile(r"lora_te\d*_")
_OTHER_PARTS = re.compile(r"lora_unet_(?:decoder_)?(encoder|tokenizer|detokenizer)_")

SUFFIXES = {  # key suffix -> (family, part name inside ModuleDelta.tensors)
    "lora_A.weight": ("lora_AB", "lora_down"), "lora_B.weight": ("lora_AB", "lora_up"),
    "lora_A.default.weight": ("lora_AB", "lora_down"), "lora_B.default.weight": ("lora_AB", "lora_up"),
    "lora_down.weight": ("lora_updown", "lora_down"), "lora_up.weight": ("lora_updown", "lora_up"),
    "lora_magnitude_vector": (AdapterKind.LORA, "dora_scale"),
    "lora_magnitude_vector.weight": (AdapterKind.LORA, "dora_scale"),
    **{name: (AdapterKind.LOKR, name) for name in ("lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b",
                                         "lokr_t2")},
    **{name: (AdapterKind.LOHA, name) for name in ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2")},
    "diff": (DIFF, "diff"), "diff_b": (DIFF, "diff_b"),  # ComfyUI's full weight / bias differences
    "dora_scale": ("any", "dora_scale"), "alpha": ("any", "alpha"), "bias": ("bias", "weight"),
}
_BY_LENGTH = sorted(SUFFIXES, key=len, reverse=True)
_UNDERSCORED_NAMES = [  # every dot became `_`; the decoder's known structure puts them back
    (re.compile(r"layers_(\d+)_(self_attn|cross_attn)_([qkvo]_proj|[qk]_norm)"), "layers.{}.{}.{}"),
    (re.compile(r"layers_(\d+)_mlp_(gate_proj|up_proj|down_proj)"), "layers.{}.mlp.{}"),
    (re.compile(r"layers_(\d+)_(self_attn_norm|cross_attn_norm|mlp_norm)"), "layers.{}.{}"),
    (re.compile(r"(proj_in|proj_out)_(\d+)"), "{}.{}"),
    (re.compile(r"(time_embed_r|time_embed)_(linear_1|linear_2|time_proj)"), "{}.{}"),
    (re.compile(r"(condition_embedder|norm_out)"), "{}"),
]


@dataclass(frozen=True)
class KeyGroups:
    """A file's keys sorted by decoder module, and the keys set aside (they patch no part acetune patches)."""

    modules: dict[str, dict[str, str]]  # decoder module -> part name -> key in the file
    families: frozenset[str]  # lora_AB, lora_updown, lokr, loha, diff, bias (what the parts look like)
    style: str  # the naming: a dotted prefix (`transformer.` for diffusers), `lycoris_` or `lora_unet_`
    set_aside: dict[str, list[str]] = field(default_factory=dict)  # what they patch -> keys


def underscored_module(name: str) -> str | None:
    """`layers_0_self_attn_q_proj` -> `layers.0.self_attn.q_proj` (None for no decoder module)."""
    for pattern, template in _UNDERSCORED_NAMES:
        match = pattern.fullmatch(name)
        if match:
            return template.format(*match.groups())
    return None


def group_keys(keys, path: Path) -> KeyGroups:
    """Split key names into module -> {part: key}; unknown names are refused with examples."""
    modules: dict[str, dict[str, str]] = {}
    families, styles, unknown = set(), set(), []
    set_aside: dict[str, list[str]] = {}
    for key in sorted(keys):
        other = _other_part(key)
        if other is not None:
            set_aside.setdefault(other, []).append(key)
            continue
        suffix = next((s for s in _BY_LENGTH if key.endswith("." + s)), None)
        stem = key[: -len(suffix) - 1] if suffix else ""
        style, module = _module_of(stem)
        if suffix is None or module is None:
            unknown.append(key)
            continue
        family, part = SUFFIXES[suffix]
        families.add(family)
        styles.add(style)
        modules.setdefault(module, {})[part] = key
    if unknown:
        raise ModelLoadError(f"{len(unknown)} keys of no known adapter format, e.g. {unknown[:3]}", path=path,
                             fix="acetune reads PEFT, LyCORIS (lycoris_*), kohya (lora_unet_*), ComfyUI "
                                 "(base_model.model.* / diffusion_model.decoder.*), diffusers (transformer.*) and "
                                 "decoder.* full fine-tune files")
    if len(styles) > 1:
        raise ModelLoadError(f"the file mixes key prefixes ({', '.join(sorted(styles))})", path=path)
    return KeyGroups(modules, frozenset(families - {"any"}), styles.pop() if styles else "", set_aside)


def _module_of(stem: str) -> tuple[str, str | None]:
    """(naming style, decoder module or None) of a key without its suffix."""
    for prefix in DOTTED_PREFIXES:
        if stem.startswith(prefix):
            return prefix, stem[len(prefix):] or None
    if stem.startswith(DIFFUSERS_PREFIX):
        return DIFFUSERS_PREFIX, module_from_diffusers(stem[len(DIFFUSERS_PREFIX):]) or None
    if stem.startswith(LYCORIS_PREFIX):
        return LYCORIS_PREFIX, underscored_module(stem[len(LYCORIS_PREFIX):])
    for prefix in KOHYA_PREFIXES:
        if stem.startswith(prefix) and (module := underscored_module(stem[len(prefix):])) is not None:
            return _KOHYA_STYLE, module
    return "", None


def _other_part(key: str) -> str | None:
    """What a key patches when it is a part of ACE-Step that acetune does not patch (None otherwise)."""
    if TEXT_ENCODER.match(key):
        return "the text encoder (lora_te*)"
    match = _OTHER_PARTS.match(key)
    if match:
        return {"encoder": "the condition encoder", "tokenizer": "the audio tokenizer",
                "detokenizer": "the audio detokenizer"}[match.group(1)]
    return None
