"""Official ACE-Step 1.5 names <-> diffusers `AceStepPipeline` names, for checkpoint keys and decoder modules.

Facts read from diffusers 0.42.1 (models/transformers/ace_step_transformer.py,
pipelines/ace_step/modeling_ace_step.py and pipeline_ace_step.py) and checked against the
modules diffusers builds in tests/model/test_diffusers_keys.py:
- the official model's top-level parts are pipeline components: `decoder` -> `transformer`,
  `encoder` -> `condition_encoder`, `tokenizer` -> `audio_tokenizer`, `detokenizer` ->
  `audio_token_detokenizer`; `null_condition_emb` is a parameter of `condition_encoder`, and the
  silence latent a persistent buffer `silence_latent` of it ([1, T, C], time-major);
- inside a component the renaming is pure, segment by segment: attention `q_proj`/`k_proj`/`v_proj`/
  `o_proj` -> `to_q`/`to_k`/`to_v`/`to_out.0`, `q_norm`/`k_norm` -> `norm_q`/`norm_k`, and the
  decoder's Sequential-wrapped convolutions `proj_in.1`/`proj_out.1` -> `proj_in_conv`/`proj_out_conv`.
  Every other name (MLP projections, norms, embeddings, tables) is the same in both.
A decoder module name (what adapters patch) maps the same way, without the `decoder.` prefix:
`layers.3.self_attn.o_proj` <-> `layers.3.self_attn.to_out.0`.
"""

from __future__ import annotations

import re

COMPONENTS = {"decoder": "transformer", "encoder": "condition_encoder", "tokenizer": "audio_tokenizer",
              "detokenizer": "audio_token_detokenizer"}
NULL_CONDITION = "null_condition_emb"  # official top-level key; a parameter of condition_encoder in diffusers
NULL_CONDITION_COMPONENT = COMPONENTS["encoder"]
SILENCE_LATENT = "silence_latent"  # buffer of condition_encoder; official: the separate silence_latent.pt
SILENCE_COMPONENT = COMPONENTS["encoder"]

_SEGMENTS = {"q_proj": "to_q", "k_proj": "to_k", "v_proj": "to_v", "o_proj": "to_out.0", "q_norm": "norm_q",
             "k_norm": "norm_k", "proj_in.1": "proj_in_conv", "proj_out.1": "proj_out_conv"}
_BACK = {diffusers: official for official, diffusers in _SEGMENTS.items()}
_PARTS = {component: part for part, component in COMPONENTS.items()}


def _segment_pattern(names) -> re.Pattern:
    # a whole dotted segment (or the two segments of `proj_in.1`): at the start or after a dot, before a dot or the end
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![^.])(?:{alternatives})(?![^.])")


_TO_DIFFUSERS, _FROM_DIFFUSERS = _segment_pattern(_SEGMENTS), _segment_pattern(_BACK)


def module_to_diffusers(name: str) -> str:
    """A name inside one component, official -> diffusers (`layers.0.mlp.up_proj` stays as it is)."""
    return _TO_DIFFUSERS.sub(lambda m: _SEGMENTS[m.group(0)], name)


def module_from_diffusers(name: str) -> str:
    """A name inside one component, diffusers -> official."""
    return _FROM_DIFFUSERS.sub(lambda m: _BACK[m.group(0)], name)


def key_to_diffusers(key: str) -> tuple[str, str]:
    """Official state-dict key -> (pipeline component, key inside it); ValueError for a key of no component."""
    if key == NULL_CONDITION:
        return NULL_CONDITION_COMPONENT, NULL_CONDITION
    part, _, rest = key.partition(".")
    if part not in COMPONENTS or not rest:
        raise ValueError(f"{key!r} belongs to no ACE-Step pipeline component")
    return COMPONENTS[part], module_to_diffusers(rest)


def key_from_diffusers(component: str, key: str) -> str:
    """(pipeline component, key inside it) -> official state-dict key; ValueError for one with no official key.

    The silence latent is the one such tensor: officially it is a file, not a model weight.
    """
    if component == NULL_CONDITION_COMPONENT and key == NULL_CONDITION:
        return NULL_CONDITION
    if component not in _PARTS or (component, key) == (SILENCE_COMPONENT, SILENCE_LATENT):
        raise ValueError(f"{component}.{key} has no official ACE-Step state-dict key")
    return f"{_PARTS[component]}.{module_from_diffusers(key)}"
