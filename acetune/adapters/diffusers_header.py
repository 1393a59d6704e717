"""The `lora_adapter_metadata` header that makes diffusers load a LoRA/DoRA at its trained strength.

Facts from diffusers 0.42.1 (loaders/lora_base.py, loaders/peft.py, utils/peft_utils.py,
loaders/lora_pipeline.py `AceStepLoraLoaderMixin`):
- `load_lora_weights` reads alpha and rank only from the safetensors header key
  `lora_adapter_metadata` (JSON of `LoraConfig` arguments, each key prefixed `transformer.`), and
  passes it to `LoraConfig(**...)`; `target_modules` is then required. Without the header it
  infers r from the tensors and sets lora_alpha = r, so a trained alpha/r of 2 loads as 1.
  It never reads `adapter_config.json`. This is the header diffusers' own training scripts write
  into `pytorch_lora_weights.safetensors`.
- A `lora_dropout` above 0 there builds dropout layers that stay in training mode after loading
  (random outputs until `.eval()`), so the header always says 0: it describes inference.
- ACE-Step's loader renames original PEFT keys (`base_model.model.` -> `transformer.`, `q_proj` ->
  `to_q`, `o_proj` -> `to_out.0`, ...) only when some key contains `q_proj` or `k_proj`; the
  header's `target_modules` name the modules after that renaming (diffusers names).
DoRA loads too: PEFT's `lora_magnitude_vector` keys are renamed the same way and `use_dora`
comes from the header. Per-module strengths are exact: `alpha_pattern` / `rank_pattern` carry
the modules whose alpha or rank differ from the most common one.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path

from acetune.adapters.attached import AttachedAdapter
from acetune.adapters.kinds import KINDS, PEFT
from acetune.config import AdapterKind
from acetune.errors import ModelLoadError
from acetune.model.diffusers_keys import module_to_diffusers

METADATA_KEY = "lora_adapter_metadata"
PREFIX = "transformer"
CONVERTED_PROJECTIONS = ("q_proj", "k_proj")  # a key with one of these makes diffusers rename the PEFT file's keys


def lora_metadata(modules: dict[str, tuple[int, float]], *, use_dora: bool) -> str:
    """The header value for decoder modules {official name: (rank, alpha)}; scale = alpha / rank, no rsLoRA.

    `rank_pattern` / `alpha_pattern` list the modules that differ from the most common rank / alpha.
    """
    ranks = Counter(rank for rank, _ in modules.values())
    alphas = Counter(alpha for _, alpha in modules.values())
    rank, alpha = ranks.most_common(1)[0][0], alphas.most_common(1)[0][0]
    names = {name: module_to_diffusers(name) for name in modules}
    config = {
        "r": rank, "lora_alpha": alpha, "lora_dropout": 0.0, "use_dora": use_dora, "use_rslora": False,
        "bias": "none", "target_modules": sorted(names.values()),
        "rank_pattern": {names[n]: r for n, (r, _) in sorted(modules.items()) if r != rank},
        "alpha_pattern": {names[n]: a for n, (_, a) in sorted(modules.items()) if a != alpha},
    }
    return json.dumps({f"{PREFIX}.{key}": value for key, value in config.items()}, sort_keys=True)


def peft_file_header(attached: AttachedAdapter) -> dict[str, str]:
    """The header for a PEFT `adapter_model.safetensors` acetune saves, when diffusers can read that file.

    Empty when it cannot: trained biases (a non-LoRA key makes diffusers refuse the file), or no
    q_proj/k_proj target (diffusers would not rename the keys and would load nothing); for those
    `acetune export-diffusers` writes a file with diffusers' own names.
    """
    config = attached.config
    if KINDS[attached.kind].backend != PEFT or config.bias != "none":
        return {}
    if not any(name.rsplit(".", 1)[-1] in CONVERTED_PROJECTIONS for name in attached.targets):
        return {}
    modules = {name: (config.rank, float(config.alpha)) for name in attached.targets}
    return {METADATA_KEY: lora_metadata(modules, use_dora=attached.kind is AdapterKind.DORA)}


def transformer_config(metadata: dict[str, str], path: Path) -> dict | None:
    """The decoder's entries of the file's header (`transformer.` removed), or None when the file has none.

    A pipeline's save prefixes each key with its component; `save_lora_adapter` on the model alone
    writes them bare. Other components' entries (`text_encoder.*`) are not the decoder's and are left out.
    """
    raw = metadata.get(METADATA_KEY)
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ModelLoadError(f"the {METADATA_KEY} header is malformed (not JSON: {err})", path=path) from err
    if not isinstance(data, dict):
        raise ModelLoadError(f"the {METADATA_KEY} header is malformed (not a JSON object)", path=path)
    return {key.removeprefix(f"{PREFIX}."): value for key, value in data.items()
            if key.startswith(f"{PREFIX}.") or "." not in key}


def header_alpha(config: dict, module: str, rank: int, path: Path) -> tuple[float, float]:
    """(alpha, scale) diffusers applies to decoder `module` (official name) of tensor rank `rank`, from `config`.

    PEFT's rule: alpha / r (alpha / sqrt(r) with use_rslora), each from its pattern or the default;
    the patterns name diffusers modules (`to_q`, `to_out.0`). LoKr configs call alpha `alpha`; a
    config that names none gives alpha = r (scale 1), as diffusers does without a header.
    """
    name = module_to_diffusers(module)
    try:
        r = float(pattern_value(config.get("rank_pattern") or {}, name, config.get("r", rank)))
        default = config.get("lora_alpha", config.get("alpha", r))
        alpha = float(pattern_value(config.get("alpha_pattern") or {}, name, default))
        return alpha, alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r
    except (AttributeError, TypeError, ValueError, ZeroDivisionError, re.error) as err:
        raise ModelLoadError(f"the {METADATA_KEY} header is malformed ({err})", path=path) from err


def pattern_value(pattern: dict, module: str, default):
    """PEFT's per-module override: the first key that matches the end of the module name at a dot."""
    for key, value in pattern.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def effective_alpha(scale: float, rank: int) -> float:
    """The alpha that gives `scale` at `rank` under alpha / rank, rounded off float noise (8/3*3 -> 8.0)."""
    alpha = scale * rank
    nearest = round(alpha, 9)
    return nearest if math.isclose(alpha, nearest, rel_tol=1e-12, abs_tol=0.0) else alpha
