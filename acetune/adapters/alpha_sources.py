"""Where a PEFT-style LoRA's alpha comes from when its `adapter_config.json` is not beside it.

PEFT keeps lora_alpha only in adapter_config.json: its `save_pretrained` writes the safetensors
header `{"format": "pt"}` and nothing else (peft 0.21.2, peft_model.py). A bare
`adapter_model.safetensors` (lora_A / lora_B keys) therefore does not say its scale, and
loading it at alpha = rank (ComfyUI's rule when `.alpha` is absent) plays it at rank/alpha of
its strength (half, for r 64 / alpha 128). The alpha is taken, in this order, from:
1. `acetune_adapter_config` in the header (every adapter acetune writes: its `AdapterConfig`);
2. `lora_adapter_metadata` in the header: diffusers' `save_lora_adapter` / `save_lora_weights`
   write the adapter's PEFT LoraConfig there as JSON (diffusers 0.42 loaders/peft.py and
   lora_base.py), with top-level keys prefixed by the component (`transformer.lora_alpha`) when a
   pipeline saved it; its patterns name diffusers modules, so diffusers_header reads it;
3. an alpha the user gives (`--adapter-alpha`);
and otherwise the file is refused, saying why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from acetune.adapters.config_json import config_from_json
from acetune.adapters.diffusers_header import METADATA_KEY as DIFFUSERS_KEY
from acetune.adapters.diffusers_header import header_alpha, pattern_value, transformer_config
from acetune.adapters.io import CONFIG_KEY as ACETUNE_KEY
from acetune.errors import ConfigError

GIVEN = "given (--adapter-alpha)"
HEADER = f"{DIFFUSERS_KEY} in the file"


@dataclass(frozen=True)
class LoraAlpha:
    """What sets a PEFT-style LoRA's scale, and where it was read (shown by `adapter info`).

    `alpha_pattern` keys name acetune (official) modules, as in a PEFT adapter_config.json.
    """

    lora_alpha: float
    source: str
    use_rslora: bool = False
    alpha_pattern: dict = field(default_factory=dict)

    def for_module(self, module: str, rank: int) -> tuple[float, float]:
        """(alpha, scale) of one module: alpha/r, or alpha/sqrt(r) for rsLoRA (PEFT's rules)."""
        alpha = float(pattern_value(self.alpha_pattern, module, self.lora_alpha))
        return alpha, alpha / math.sqrt(rank) if self.use_rslora else alpha / rank


@dataclass(frozen=True)
class HeaderAlpha:
    """A diffusers `lora_adapter_metadata` header's alpha: its patterns name diffusers modules."""

    config: dict  # the decoder's entries of the header (diffusers_header.transformer_config)
    path: Path
    source: str = HEADER

    def for_module(self, module: str, rank: int) -> tuple[float, float]:
        """(alpha, scale) of one module, as diffusers applies it."""
        return header_alpha(self.config, module, rank, self.path)


def checked_alpha(value: float | None) -> float | None:
    """A user-given alpha as a positive float (None stays None)."""
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"adapter alpha must be a positive number, got {value!r}",
                          fix="pass the lora_alpha the adapter was trained with, e.g. --adapter-alpha 128")
    return float(value)


def alpha_from_header(metadata: dict[str, str], path: Path) -> LoraAlpha | HeaderAlpha | None:
    """The alpha a bare PEFT-style file records in its safetensors header, or None."""
    if ACETUNE_KEY in metadata:
        config = config_from_json(metadata[ACETUNE_KEY], path=path)
        return LoraAlpha(float(config.alpha), f"{ACETUNE_KEY} in the file")
    config = transformer_config(metadata, path)
    if config is None or "lora_alpha" not in config:  # another component's, or none: the file does not say
        return None
    return HeaderAlpha(config, path)
