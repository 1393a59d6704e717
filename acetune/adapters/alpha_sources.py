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
   pipeline saved it;
3. an alpha the user gives (`--adapter-alpha`);
and otherwise the file is refused, saying why.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from acetune.adapters.config_json import config_from_json
from acetune.adapters.io import CONFIG_KEY as ACETUNE_KEY
from acetune.errors import ConfigError, ModelLoadError

DIFFUSERS_KEY = "lora_adapter_metadata"
GIVEN = "given (--adapter-alpha)"


@dataclass(frozen=True)
class LoraAlpha:
    """What sets a PEFT-style LoRA's scale, and where it was read (shown by `adapter info`)."""

    lora_alpha: float
    source: str
    use_rslora: bool = False
    alpha_pattern: dict = field(default_factory=dict)

    def for_module(self, module: str, rank: int) -> tuple[float, float]:
        """(alpha, scale) of one module: alpha/r, or alpha/sqrt(r) for rsLoRA (PEFT's rules)."""
        alpha = float(pattern_value(self.alpha_pattern, module, self.lora_alpha))
        return alpha, alpha / math.sqrt(rank) if self.use_rslora else alpha / rank


def pattern_value(pattern: dict, module: str, default):
    """PEFT's per-module override: the first key that matches the end of the module name at a dot."""
    for key, value in pattern.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def checked_alpha(value: float | None) -> float | None:
    """A user-given alpha as a positive float (None stays None)."""
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"adapter alpha must be a positive number, got {value!r}",
                          fix="pass the lora_alpha the adapter was trained with, e.g. --adapter-alpha 128")
    return float(value)


def alpha_from_header(metadata: dict[str, str], path: Path) -> LoraAlpha | None:
    """The alpha a bare PEFT-style file records in its safetensors header, or None."""
    if ACETUNE_KEY in metadata:
        config = config_from_json(metadata[ACETUNE_KEY], path=path)
        return LoraAlpha(float(config.alpha), f"{ACETUNE_KEY} in the file")
    if DIFFUSERS_KEY in metadata:
        return _diffusers_alpha(metadata[DIFFUSERS_KEY], path)
    return None


def _diffusers_alpha(text: str, path: Path) -> LoraAlpha:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ModelLoadError(f"the file's {DIFFUSERS_KEY} is not valid JSON ({err})", path=path) from err
    if not isinstance(data, dict):
        raise ModelLoadError(f"the file's {DIFFUSERS_KEY} is not a JSON object", path=path)
    prefixes = {key[: -len("lora_alpha")] for key in data if key.endswith("lora_alpha")}
    if len(prefixes) != 1:
        found = ", ".join(sorted(p.rstrip(".") or "(none)" for p in prefixes)) or "none"
        raise ModelLoadError(f"the file's {DIFFUSERS_KEY} does not give one lora_alpha (components: {found})",
                             path=path, fix="pass the alpha for this file with --adapter-alpha")
    prefix = prefixes.pop()
    try:
        return LoraAlpha(float(data[prefix + "lora_alpha"]), f"{DIFFUSERS_KEY} in the file",
                         bool(data.get(prefix + "use_rslora", False)), dict(data.get(prefix + "alpha_pattern") or {}))
    except (TypeError, ValueError) as err:
        raise ModelLoadError(f"the file's {DIFFUSERS_KEY} has a malformed value ({err})", path=path) from err
