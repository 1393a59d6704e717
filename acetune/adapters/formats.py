"""Read any adapter file into one neutral form: per decoder module, its raw factors and how they apply.

Inference needs none of PEFT's or LyCORIS's module machinery, only each module's patched
weight, so one reader covers PEFT folders (LoRA/DoRA), LyCORIS files (LoKr/LoHa), ComfyUI
single files and acetune's full fine-tune, and one `ModuleDelta.merged_weight` holds the math.
The LyCORIS math (kron with trailing kernel axes, Hadamard product, Tucker rebuild, scale =
alpha / rank of the `*_b` factor, 1 when both LoKr halves are full) is written here rather than
called from `lycoris.functional`, whose names, rank rule and backend dispatch differ between the
LyCORIS releases acetune accepts; the tests check it against a live LyCORIS network.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from acetune.adapters import full, lycoris_backend, peft_backend
from acetune.adapters.config_json import read_json_object
from acetune.adapters.diffusers_header import METADATA_KEY as DIFFUSERS_HEADER
from acetune.adapters.diffusers_header import PREFIX as DIFFUSERS_COMPONENT
from acetune.adapters.diffusers_header import WEIGHTS_NAME as DIFFUSERS_WEIGHTS
from acetune.adapters.diffusers_header import header_scale, pattern_value
from acetune.adapters.safetensors_io import read_safetensors
from acetune.errors import ModelLoadError
from acetune.model.diffusers_keys import module_from_diffusers

# the file names the training-side writers use (one definition each)
PEFT_CONFIG, PEFT_WEIGHTS, FULL_WEIGHTS = peft_backend.CONFIG_FILE, peft_backend.WEIGHTS_FILE, full.WEIGHTS_FILE
LYCORIS_FILES = tuple(lycoris_backend.WEIGHTS_FILES.values())
PREFIXES = ("base_model.model.", "diffusion_model.decoder.")  # dotted paths; plus `lycoris_` + underscored
DIFFUSERS_PREFIX = f"{DIFFUSERS_COMPONENT}."  # diffusers' own files: its module names (to_q, to_out.0, ...)
_SUFFIXES = {  # key suffix -> (family, name inside ModuleDelta.tensors)
    "lora_A.weight": ("lora_AB", "lora_down"), "lora_B.weight": ("lora_AB", "lora_up"),
    "lora_A.default.weight": ("lora_AB", "lora_down"), "lora_B.default.weight": ("lora_AB", "lora_up"),
    "lora_down.weight": ("lora_updown", "lora_down"), "lora_up.weight": ("lora_updown", "lora_up"),
    "lora_magnitude_vector": ("lora", "dora_scale"), "lora_magnitude_vector.weight": ("lora", "dora_scale"),
    **{name: ("lokr", name) for name in ("lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b",
                                         "lokr_t2")},
    **{name: ("loha", name) for name in ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2")},
    "dora_scale": ("any", "dora_scale"), "alpha": ("any", "alpha"), "bias": ("bias", "weight"),
}
_BY_LENGTH = sorted(_SUFFIXES, key=len, reverse=True)
_PEFT_KEY = re.compile(r"base_model\.model\.([\w.]+?)\."
                       r"(lora_[AB](?:\.default)?\.weight|lora_magnitude_vector(?:\.weight)?|bias)")
_LYCORIS_NAMES = [  # LyCORIS replaces every dot by `_`; the decoder's known structure puts them back
    (re.compile(r"layers_(\d+)_(self_attn|cross_attn)_([qkvo]_proj|[qk]_norm)"), "layers.{}.{}.{}"),
    (re.compile(r"layers_(\d+)_mlp_(gate_proj|up_proj|down_proj)"), "layers.{}.mlp.{}"),
    (re.compile(r"layers_(\d+)_(self_attn_norm|cross_attn_norm|mlp_norm)"), "layers.{}.{}"),
    (re.compile(r"(proj_in|proj_out)_(\d+)"), "{}.{}"),
    (re.compile(r"(time_embed_r|time_embed)_(linear_1|linear_2|time_proj)"), "{}.{}"),
    (re.compile(r"(condition_embedder|norm_out)"), "{}"),
]


@dataclass(frozen=True, eq=False)
class ModuleDelta:
    """One adapted decoder tensor: `<module>.<param>` (param is `weight` except for full/bias replacements).

    `tensors` (CPU, as stored): lora/dora `lora_down` [r, in...], `lora_up` [out, r...], optional
    `dora_scale` (PEFT magnitude [out], or ComfyUI/LyCORIS [out, 1] / [1, in]); lokr/loha the
    LyCORIS names (`lokr_w1`, `hada_w1_a`, ..., optional `dora_scale`); full `weight`.
    `scale` is what multiplies the factors at strength 1 (alpha/r, alpha/sqrt(r) for rsLoRA).
    """

    module: str
    kind: str  # lora | dora | lokr | loha | full
    tensors: dict[str, torch.Tensor]
    scale: float = 1.0
    param: str = "weight"

    @property
    def target(self) -> str:
        """The decoder tensor this patches, e.g. `layers.0.self_attn.q_proj.weight`."""
        return f"{self.module}.{self.param}" if self.module else self.param

    @property
    def rank(self) -> int | None:
        t = self.tensors
        for key in ("lora_down", "lokr_w2_b", "lokr_w1_b", "hada_w1_b"):
            if key in t:
                return int(t[key].shape[0])
        return None

    def mismatch(self, shape: torch.Size) -> str | None:
        """Why this delta cannot patch a tensor of `shape` (None when it fits)."""
        if self.kind == "full":
            found = tuple(self.tensors["weight"].shape)
            return None if found == tuple(shape) else f"the adapter has {list(found)}, this decoder {list(shape)}"
        if len(shape) < 2:
            return f"the adapter patches a matrix, this decoder has a vector {list(shape)}"
        out, flat_in = _implied_size(self.tensors)
        if (out, flat_in) != (shape[0], math.prod(shape[1:])):
            return f"the adapter makes [{out}, {flat_in}], this decoder has {list(shape)}"
        scale = self.tensors.get("dora_scale")
        if scale is not None and _dora_axis(scale, shape) is None:
            return f"its dora_scale {list(scale.shape)} fits neither rows nor columns of {list(shape)}"
        return None

    def merged_weight(self, base: torch.Tensor, strength: float) -> torch.Tensor:
        """`base` patched at `strength`, computed in float32 on base's device, returned in base's dtype.

        lora/lokr/loha: W + strength*ΔW. Weight-decomposed (DoRA, or LyCORIS with dora_scale) and full:
        lerp(W, W_adapted, strength), ComfyUI's strength rule, so 0 is the base and 1 the trained weight.
        """
        w = base.detach().float()
        if self.kind == "full":
            return torch.lerp(w, self.tensors["weight"].to(w.device, torch.float32), strength).to(base.dtype)
        delta = _delta(self.kind, {k: v.to(w.device, torch.float32) for k, v in self.tensors.items()},
                       self.scale, w.shape)
        magnitude = self.tensors.get("dora_scale")
        if magnitude is None:
            return w.add(delta, alpha=strength).to(base.dtype)
        adapted = _decompose(w + delta, magnitude.to(w.device, torch.float32))
        return torch.lerp(w, adapted, strength).to(base.dtype)


@dataclass(frozen=True, eq=False)
class AdapterFile:
    """An adapter read from disk. `deltas` is keyed by module name, or tensor name for full replacements."""

    path: Path  # the weights file read
    format: str  # peft | lycoris | comfyui | diffusers | acetune-full
    kind: str  # lora | dora | lokr | loha | full
    deltas: dict[str, ModuleDelta]
    metadata: dict[str, str]
    warnings: tuple[str, ...] = ()


def read_adapter(path: str | Path) -> AdapterFile:
    """Detect the format of a folder or file and read every module delta; ModelLoadError names the file."""
    weights, config_path = _locate(Path(path))
    config = None if config_path is None else _peft_config(config_path)  # cheap checks before the tensors
    tensors, metadata = read_safetensors(weights)
    if not tensors:
        raise ModelLoadError("the file holds no tensors", path=weights)
    if config is not None:
        return _read_peft(weights, config, tensors, metadata)
    if all(key.startswith("decoder.") for key in tensors):
        deltas = {key[len("decoder."):]: _replacement(key[len("decoder."):], value) for key, value in tensors.items()}
        return AdapterFile(weights, "acetune-full", "full", deltas, metadata)
    modules, families = _group(tensors, weights)
    if "bias" in families:
        raise ModelLoadError(f"plain .bias keys belong to no single-file adapter format, e.g. "
                             f"{sorted(k for k in tensors if k.endswith('.bias'))[:3]}", path=weights)
    kinds = {_module_kind(weights, name, parts) for name, parts in modules.items()}
    if len({"lora" if k == "dora" else k for k in kinds}) > 1 or families >= {"lora_AB", "lora_updown"}:
        raise ModelLoadError(f"the file mixes adapter formats ({', '.join(sorted(kinds | families))})", path=weights,
                             fix="keep one adapter per file")
    kind = "dora" if "dora" in kinds else kinds.pop()
    deltas = {name: _delta_from_parts(name, parts, kind) for name, parts in modules.items()}
    if any(key.startswith(DIFFUSERS_PREFIX) for key in tensors):
        return _read_diffusers(weights, kind, deltas, metadata)
    fmt = "comfyui" if kind in ("lora", "dora") or metadata.get("format") == "comfyui" else "lycoris"
    notes = ()
    if kind in ("lora", "dora") and not any("alpha" in parts for parts in modules.values()):
        notes = (f"{weights.name} has no alpha tensors, so it applies with alpha/rank = 1 (ComfyUI's rule); a PEFT "
                 f"adapter needs its {PEFT_CONFIG} beside it",)
    return AdapterFile(weights, fmt, kind, deltas, metadata, notes)


def _read_diffusers(weights: Path, kind: str, deltas: dict[str, ModuleDelta], metadata: dict[str, str]) -> AdapterFile:
    """A diffusers adapter file (ours from export_diffusers, or diffusers' trainers'): scales from its header.

    A LoKr file has none: diffusers loads LoKr at alpha = r (scale 1), so its scale rides in the factors.
    """
    scaled = {name: ModuleDelta(name, d.kind, d.tensors, header_scale(metadata, name, d.rank or 1, weights))
              for name, d in deltas.items()}
    notes = () if DIFFUSERS_HEADER in metadata or kind == "lokr" else \
        (f"{weights.name} has no {DIFFUSERS_HEADER} header, so it applies with alpha/rank = 1 (diffusers' rule)",)
    return AdapterFile(weights, "diffusers", kind, scaled, metadata, notes)


def _locate(path: Path) -> tuple[Path, Path | None]:
    """(weights file, PEFT config or None) for a folder or a file the user pointed at."""
    if not path.exists():
        raise ModelLoadError("no such adapter file or folder", path=path)
    if path.is_file():
        if path.name in (PEFT_CONFIG, PEFT_WEIGHTS) and (path.parent / PEFT_CONFIG).is_file():
            path = path.parent
        elif path.suffix != ".safetensors":
            raise ModelLoadError("not a .safetensors adapter file", path=path,
                                 fix="pass the adapter folder or its .safetensors file (.bin/.pt are not read)")
        else:
            return path, None
    found = [name for name in (PEFT_CONFIG, *LYCORIS_FILES, FULL_WEIGHTS, DIFFUSERS_WEIGHTS) if (path / name).is_file()]
    if not found and (path / "adapter").is_dir():  # the nested `<run>/adapter/` layout of other trainers
        return _locate(path / "adapter")
    if not found:
        raise ModelLoadError(f"no adapter here (expected {PEFT_CONFIG}, {', '.join(LYCORIS_FILES)}, {FULL_WEIGHTS} "
                             f"or {DIFFUSERS_WEIGHTS})", path=path, fix="pass the adapter folder, or a .safetensors file")
    if len(found) > 1:
        raise ModelLoadError(f"more than one adapter here ({', '.join(found)})", path=path,
                             fix="keep one adapter per folder, or pass the file you mean")
    if found[0] != PEFT_CONFIG:
        return path / found[0], None
    if not (path / PEFT_WEIGHTS).is_file():
        raise ModelLoadError(f"{PEFT_CONFIG} is there but {PEFT_WEIGHTS} is missing", path=path,
                             fix="copy the whole adapter folder (PEFT .bin weights are not read)")
    return path / PEFT_WEIGHTS, path / PEFT_CONFIG


def _read_peft(weights: Path, config: dict, tensors: dict, metadata: dict[str, str]) -> AdapterFile:
    odd = sorted(k for k in tensors if not (match := _PEFT_KEY.fullmatch(k)) or ".lora_" in match.group(1))
    if odd:  # e.g. lora_down (ComfyUI), lokr_* (LyCORIS), lora_B.bias (PEFT's lora_bias option)
        raise ModelLoadError(f"{len(odd)} keys are not PEFT LoRA keys, e.g. {odd[:3]}", path=weights)
    modules, _ = _group(tensors, weights)
    deltas: dict[str, ModuleDelta] = {}
    for name, parts in modules.items():
        if "weight" in parts:  # a bias trained with bias="all"/"lora_only": PEFT saves its full value
            deltas[f"{name}.bias"] = ModuleDelta(name, "full", {"weight": parts.pop("weight")}, param="bias")
        if not parts:
            continue
        kind = _module_kind(weights, name, parts)
        if kind == "dora" and not config["use_dora"] or kind == "lora" and config["use_dora"]:
            raise ModelLoadError(f"{name} {'has' if kind == 'dora' else 'lacks'} a DoRA magnitude but "
                                 f"{PEFT_CONFIG} says use_dora={config['use_dora']}", path=weights)
        rank = int(parts["lora_down"].shape[0])
        alpha = float(pattern_value(config["alpha_pattern"], name, config["lora_alpha"]))
        scale = alpha / math.sqrt(rank) if config["use_rslora"] else alpha / rank
        deltas[name] = ModuleDelta(name, kind, parts, scale)
    kinds = {d.kind for d in deltas.values()} - {"full"}
    if not kinds:
        raise ModelLoadError("the PEFT file holds no LoRA tensors", path=weights)
    extra = {k: str(config[k]) for k in ("trigger_word", "tag_position") if config.get(k) and k not in metadata}
    return AdapterFile(weights, "peft", kinds.pop(), deltas, {**metadata, **extra})


def _peft_config(path: Path) -> dict:
    data = read_json_object(path, "PEFT adapter config")
    if data.get("peft_type") != "LORA":
        raise ModelLoadError(f"PEFT adapter type {data.get('peft_type')!r} is not supported (only LORA, with or "
                             "without DoRA)", path=path)
    if data.get("fan_in_fan_out"):
        raise ModelLoadError("fan_in_fan_out adapters (transposed Conv1D weights) are not for this model", path=path)
    try:
        return {"lora_alpha": float(data.get("lora_alpha", 8)), "use_dora": bool(data.get("use_dora")),
                "use_rslora": bool(data.get("use_rslora")), "alpha_pattern": dict(data.get("alpha_pattern") or {}),
                **{k: data[k] for k in ("trigger_word", "tag_position") if k in data}}
    except (TypeError, ValueError) as err:
        raise ModelLoadError(f"the PEFT adapter config has a malformed value ({err})", path=path) from err


def _group(tensors: dict[str, torch.Tensor], path: Path) -> tuple[dict[str, dict[str, torch.Tensor]], set[str]]:
    """Split keys into module -> {part: tensor}; unknown key formats are refused with examples."""
    modules: dict[str, dict[str, torch.Tensor]] = {}
    families, styles, unknown = set(), set(), []
    for key, value in tensors.items():
        suffix = next((s for s in _BY_LENGTH if key.endswith("." + s)), None)
        stem = key[: -len(suffix) - 1] if suffix else ""
        prefix = next((p for p in PREFIXES if stem.startswith(p)), None)
        if prefix is not None:
            module = stem[len(prefix):]
        elif stem.startswith("lycoris_"):
            prefix, module = "lycoris_", _lycoris_module(stem[len("lycoris_"):])
        elif stem.startswith(DIFFUSERS_PREFIX):
            prefix, module = DIFFUSERS_PREFIX, module_from_diffusers(stem[len(DIFFUSERS_PREFIX):])
        else:
            module = None
        if suffix is None or module is None:
            unknown.append(key)
            continue
        family, part = _SUFFIXES[suffix]
        families.add(family)
        styles.add(prefix)
        modules.setdefault(module, {})[part] = value
    if unknown:
        raise ModelLoadError(f"{len(unknown)} keys of no known adapter format, e.g. {sorted(unknown)[:3]}", path=path,
                             fix="acetune reads PEFT, LyCORIS (lycoris_*), ComfyUI (base_model.model.* / "
                                 "diffusion_model.decoder.*), diffusers (transformer.*) and decoder.* full "
                                 "fine-tune files")
    if len(styles) > 1:
        raise ModelLoadError(f"the file mixes key prefixes ({', '.join(sorted(styles))})", path=path)
    return modules, families - {"any"}


def _lycoris_module(name: str) -> str | None:
    for pattern, template in _LYCORIS_NAMES:
        match = pattern.fullmatch(name)
        if match:
            return template.format(*match.groups())
    return None


def _module_kind(path: Path, module: str, parts: dict[str, torch.Tensor]) -> str:
    names = set(parts) - {"alpha", "dora_scale"}
    if names == {"lora_down", "lora_up"}:
        return "dora" if "dora_scale" in parts else "lora"
    half = {i: {f"lokr_w{i}"} <= names or {f"lokr_w{i}_a", f"lokr_w{i}_b"} <= names for i in "12"}
    if names and all(n.startswith("lokr_") for n in names) and half["1"] and half["2"]:
        return "lokr"
    if names and all(n.startswith("hada_") for n in names) and {f"hada_w{i}_{x}" for i in "12" for x in "ab"} <= names:
        return "loha"
    raise ModelLoadError(f"{module} has an incomplete or mixed set of tensors ({', '.join(sorted(parts))})", path=path,
                         fix="the file is damaged or was cut short; export or download it again")


def _delta_from_parts(module: str, parts: dict[str, torch.Tensor], kind: str) -> ModuleDelta:
    """ComfyUI/LyCORIS scale: alpha / rank of the low-rank factor; 1 without alpha or a low-rank factor."""
    factors = {k: v for k, v in parts.items() if k != "alpha"}
    delta = ModuleDelta(module, "dora" if "dora_scale" in factors and kind in ("lora", "dora") else kind, factors)
    alpha, rank = parts.get("alpha"), delta.rank
    if alpha is None or rank is None:
        return delta
    return ModuleDelta(module, delta.kind, factors, float(alpha.float().item()) / rank)


def _replacement(name: str, value: torch.Tensor) -> ModuleDelta:
    module, _, param = name.rpartition(".")
    return ModuleDelta(module, "full", {"weight": value}, param=param)


def _implied_size(t: dict[str, torch.Tensor]) -> tuple[int, int]:
    """(rows, flattened columns) of the ΔW the factors build."""
    if "lora_up" in t:
        return t["lora_up"].shape[0], t["lora_down"][0].numel()
    if "hada_t1" in t:
        return t["hada_w1_a"].shape[1], t["hada_w1_b"].shape[1] * math.prod(t["hada_t1"].shape[2:])
    if "hada_w1_a" in t:
        return t["hada_w1_a"].shape[0], t["hada_w1_b"][0].numel()
    w1 = t["lokr_w1"].shape[:2] if "lokr_w1" in t else (t["lokr_w1_a"].shape[0], t["lokr_w1_b"].shape[1])
    if "lokr_w2" in t:
        w2 = (t["lokr_w2"].shape[0], t["lokr_w2"][0].numel())
    elif "lokr_t2" in t:
        w2 = (t["lokr_w2_a"].shape[1], t["lokr_w2_b"].shape[1] * math.prod(t["lokr_t2"].shape[2:]))
    else:
        w2 = (t["lokr_w2_a"].shape[0], t["lokr_w2_b"][0].numel())
    return w1[0] * w2[0], w1[1] * w2[1]


def _delta(kind: str, t: dict[str, torch.Tensor], scale: float, shape: torch.Size) -> torch.Tensor:
    """ΔW (float32, scaled) in the base weight's shape."""
    if kind in ("lora", "dora"):
        delta = t["lora_up"].flatten(1) @ t["lora_down"].flatten(1)
    elif kind == "loha":
        delta = _hada_half(t, "1") * _hada_half(t, "2")
    else:
        w1 = t["lokr_w1"] if "lokr_w1" in t else t["lokr_w1_a"] @ t["lokr_w1_b"]
        if "lokr_w2" in t:
            w2 = t["lokr_w2"]
        elif "lokr_t2" in t:  # Tucker: core [r, r, *k], w2_a [r, rows], w2_b [r, cols]
            w2 = torch.einsum("ij...,ip,jq->pq...", t["lokr_t2"], t["lokr_w2_a"], t["lokr_w2_b"])
        else:
            w2 = t["lokr_w2_a"] @ t["lokr_w2_b"].flatten(1)
        w1 = w1.reshape(*w1.shape, *[1] * (w2.dim() - w1.dim()))  # kernel axes go with the second factor
        delta = torch.kron(w1.contiguous(), w2.contiguous())  # kron views its inputs
    return (delta * scale).reshape(shape)


def _hada_half(t: dict[str, torch.Tensor], i: str) -> torch.Tensor:
    up, down = t[f"hada_w{i}_a"], t[f"hada_w{i}_b"]
    if f"hada_t{i}" in t:  # Tucker: core [r, r, *k], up [r, out], down [r, in]
        return torch.einsum("ij...,jq,ip->pq...", t[f"hada_t{i}"], down, up).flatten(1)
    return up @ down.flatten(1)


def _dora_axis(scale: torch.Tensor, shape: torch.Size) -> str | None:
    """`out` for a per-row magnitude ([out] or [out, 1, ...]), `in` for a per-column one ([1, in, ...])."""
    if scale.numel() == shape[0] and (scale.dim() == 1 or scale.shape[0] == shape[0]):
        return "out"
    if scale.dim() >= 2 and scale.shape[0] == 1 and scale.numel() == shape[1]:
        return "in"
    return None


def _decompose(adapted: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """m * V / ||V||, the norm per output row (PEFT DoRA) or per input column (LyCORIS wd_on_out=False)."""
    tiny = torch.finfo(torch.float32).tiny
    if _dora_axis(magnitude, adapted.shape) == "out":
        norm = adapted.flatten(1).norm(dim=1).clamp_min(tiny)
        return adapted * (magnitude.flatten() / norm).reshape(-1, *[1] * (adapted.dim() - 1))
    norm = adapted.transpose(0, 1).flatten(1).norm(dim=1).clamp_min(tiny)
    return adapted * (magnitude.flatten() / norm).reshape(1, -1, *[1] * (adapted.dim() - 2))
