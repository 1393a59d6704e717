"""Read any adapter file into one neutral form: per decoder module, its raw factors and how they apply.

Formats: PEFT folders (LoRA/DoRA: adapter_config.json + adapter_model.safetensors), bare PEFT
files (their alpha from the header or the user: alpha_sources.py), LyCORIS files (LoKr/LoHa),
kohya files (`lora_unet_*`), ComfyUI single files (LoRA/DoRA factors, or full `.diff` weight
differences), diffusers adapter files (`transformer.*`, scales from their `lora_adapter_metadata`
header as diffusers applies them) and acetune's full fine-tune. Key names: key_names.py; the math: deltas.py.

`inspect_adapter` makes every decision that needs no tensor data (format, kind, alpha, what is
set aside), so commands can refuse a file before seconds of model loading; `read_adapter`
then reads the tensors. A file is read whole or refused: parts of the model acetune does not
patch (a text encoder) are set aside only with a warning that names them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from acetune.adapters.alpha_sources import GIVEN, HEADER, HeaderAlpha, LoraAlpha, alpha_from_header, checked_alpha
from acetune.adapters.config_json import read_json_object
from acetune.adapters.deltas import ModuleDelta
from acetune.adapters.diffusers_header import METADATA_KEY as DIFFUSERS_HEADER
from acetune.adapters.diffusers_header import transformer_config
from acetune.adapters.key_names import DIFFUSERS_PREFIX, KeyGroups, group_keys
from acetune.adapters.kinds import DIFF, PEFT_CONFIG, DeltaKind
from acetune.adapters.locate import locate
from acetune.adapters.safetensors_io import read_header, read_safetensors
from acetune.config import AdapterKind
from acetune.errors import ModelLoadError

_PEFT_KEY = re.compile(r"base_model\.model\.([\w.]+?)\."
                       r"(lora_[AB](?:\.default)?\.weight|lora_magnitude_vector(?:\.weight)?|bias)")
ALPHA_TENSORS, NO_ALPHA = ".alpha tensors in the file", "none (alpha/rank = 1, the ComfyUI and kohya rule)"
DIFFUSERS_DEFAULT = "none (alpha/rank = 1, diffusers' rule without a header)"


@dataclass(frozen=True)
class AdapterHeader:
    """What an adapter file is, decided from its names and header alone (no tensor data read)."""

    path: Path  # the weights file
    format: str  # peft | lycoris | kohya | comfyui | diffusers | acetune-full
    kind: DeltaKind  # lora | dora | lokr | loha | full | diff
    metadata: dict[str, str]
    alpha_source: str  # where the scale comes from: adapter_config.json, .alpha tensors, a header, given, none
    warnings: tuple[str, ...]
    groups: KeyGroups | None  # module -> part -> key (None for a full fine-tune)
    lora_alpha: LoraAlpha | HeaderAlpha | None = None  # PEFT-style files: lora_alpha, rsLoRA, alpha_pattern
    given_alpha: float | None = None  # the user's alpha, for modules whose file states none


@dataclass(frozen=True, eq=False)
class AdapterFile:
    """An adapter read from disk. `deltas` is keyed by module name, or tensor name for full/bias entries."""

    path: Path  # the weights file read
    format: str  # peft | lycoris | kohya | comfyui | diffusers | acetune-full
    kind: DeltaKind  # lora | dora | lokr | loha | full | diff
    deltas: dict[str, ModuleDelta]
    metadata: dict[str, str]
    warnings: tuple[str, ...] = ()
    alpha_source: str = ""


def read_adapter(path: str | Path, *, alpha: float | None = None) -> AdapterFile:
    """Detect the format of a folder or file and read every module delta; ModelLoadError names the file.

    `alpha` is used only by modules whose file states no alpha (a bare PEFT file, or a
    lora_up/lora_down file without `.alpha` tensors).
    """
    header = inspect_adapter(path, alpha=alpha)
    tensors, _ = read_safetensors(header.path)
    if header.groups is None:  # full fine-tune: official `decoder.*` keys
        deltas = {key[len("decoder."):]: _replacement(key[len("decoder."):], value) for key, value in tensors.items()}
    else:
        deltas = {}
        for module, parts in header.groups.modules.items():
            for delta in _module_deltas(header, module, {part: tensors[key] for part, key in parts.items()}):
                deltas[delta.target if delta.param != "weight" else module] = delta
    return AdapterFile(header.path, header.format, header.kind, deltas, header.metadata, header.warnings,
                       header.alpha_source)


def inspect_adapter(path: str | Path, *, alpha: float | None = None) -> AdapterHeader:
    """Format, kind, alpha and warnings of an adapter, from its names and header (cheap: no tensor data)."""
    given = checked_alpha(alpha)
    found = locate(path)
    weights, config_path = found.weights, found.config
    config = None if config_path is None else _peft_config(config_path)  # cheap checks before the tensors
    keys, metadata = read_header(weights)
    if not keys:
        raise ModelLoadError("the file holds no tensors", path=weights)
    if config is not None:
        return _peft_header(weights, config, keys, metadata)
    if all(key.startswith("decoder.") for key in keys):
        return AdapterHeader(weights, "acetune-full", AdapterKind.FULL, metadata, "", (), None)
    groups = group_keys(keys, weights)
    if not groups.modules:
        raise ModelLoadError(f"the file adapts nothing acetune patches: its keys patch {_aside(groups)}", path=weights,
                             fix="acetune applies adapters to the ACE-Step decoder (the DiT) only")
    if "bias" in groups.families:
        biases = sorted(key for parts in groups.modules.values() for key in parts.values() if key.endswith(".bias"))
        raise ModelLoadError(f"plain .bias keys belong to no single-file adapter format, e.g. {biases[:3]}", path=weights)
    kinds = {_module_kind(weights, name, parts) for name, parts in groups.modules.items()}
    if len({AdapterKind.LORA if k == AdapterKind.DORA else k for k in kinds}) > 1 or groups.families >= {"lora_AB", "lora_updown"}:
        raise ModelLoadError(f"the file mixes adapter formats ({', '.join(sorted(kinds | groups.families))})",
                             path=weights, fix="keep one adapter per file")
    kind = AdapterKind.DORA if AdapterKind.DORA in kinds else kinds.pop()
    fmt = ("kohya" if groups.style == "lora_unet_" else
           "diffusers" if groups.style == DIFFUSERS_PREFIX else
           "peft" if groups.style == "base_model.model." and "lora_AB" in groups.families else  # its config left behind
           "comfyui" if kind in (AdapterKind.LORA, AdapterKind.DORA, DIFF) or metadata.get("format") == "comfyui" else "lycoris")
    notes = [f"{len(keys_)} keys for {what} are not applied: acetune patches the decoder only "
             f"(e.g. {keys_[0]})" for what, keys_ in groups.set_aside.items()]
    source, lora_alpha = (_diffusers_alpha(weights, metadata, given) if fmt == "diffusers" else
                          _alpha_source(weights, groups, kind, metadata, given))
    if source == NO_ALPHA:
        notes.append(f"{weights.name} has no alpha tensors, so it applies with alpha/rank = 1 (the ComfyUI and kohya "
                     "rule); give the alpha it was trained with (--adapter-alpha) if that is wrong")
    if source == DIFFUSERS_DEFAULT and kind != AdapterKind.LOKR:  # diffusers' LoKr carries its scale in the factors
        notes.append(f"{weights.name} has no {DIFFUSERS_HEADER} header, so it applies with alpha/rank = 1 (diffusers' "
                     "rule); give the alpha it was trained with (--adapter-alpha) if that is wrong")
    return AdapterHeader(weights, fmt, kind, metadata, source, tuple(notes), groups, lora_alpha, given)


def _alpha_source(weights: Path, groups: KeyGroups, kind: DeltaKind, metadata: dict[str, str],
                  given: float | None) -> tuple[str, LoraAlpha | None]:
    """Where the scale of a single-file adapter comes from; a bare PEFT-style file that does not say is refused."""
    if kind == DIFF:
        return "", None
    if any("alpha" in parts for parts in groups.modules.values()):
        return ALPHA_TENSORS, None
    if "lora_AB" in groups.families:  # PEFT naming: lora_alpha lived in an adapter_config.json
        recorded = alpha_from_header(metadata, weights)
        if recorded is not None:
            return recorded.source, recorded
        if given is not None:
            return GIVEN, LoraAlpha(given, GIVEN)
        raise ModelLoadError(
            f"PEFT LoRA weights without their {PEFT_CONFIG}, and nothing in the file says their lora_alpha; "
            "loading them at alpha = rank would play them at rank/alpha of their strength", path=weights,
            fix=f"put its {PEFT_CONFIG} beside it (pass the folder), or give the alpha it was trained with "
                "(--adapter-alpha, or --alpha for `adapter info` / `export-comfyui`)")
    return (GIVEN, None) if given is not None else (NO_ALPHA, None)


def _diffusers_alpha(weights: Path, metadata: dict[str, str],
                     given: float | None) -> tuple[str, HeaderAlpha | LoraAlpha | None]:
    """A diffusers file's scale: its header, as diffusers applies it; without one diffusers loads at alpha = r."""
    config = transformer_config(metadata, weights)
    if config is not None:
        return HEADER, HeaderAlpha(config, weights)
    return (GIVEN, LoraAlpha(given, GIVEN)) if given is not None else (DIFFUSERS_DEFAULT, None)


def _module_deltas(header: AdapterHeader, module: str, parts: dict[str, torch.Tensor]) -> list[ModuleDelta]:
    """The delta(s) of one module: its factors or difference, plus a bias entry when the file has one."""
    if header.kind == DIFF:
        return [ModuleDelta(module, DIFF, {"weight": parts[name]}, param=param)
                for name, param in (("diff", "weight"), ("diff_b", "bias")) if name in parts]
    out = []
    if "weight" in parts:  # a bias trained with PEFT bias="all"/"lora_only": PEFT saves its full value
        out.append(ModuleDelta(module, AdapterKind.FULL, {"weight": parts.pop("weight")}, param="bias"))
    if not parts:
        return out
    alpha_tensor = parts.pop("alpha", None)
    weight_decomposed = "dora_scale" in parts and header.kind in (AdapterKind.LORA, AdapterKind.DORA)
    kind = AdapterKind.DORA if weight_decomposed else header.kind
    delta = ModuleDelta(module, kind, parts)
    rank = delta.rank
    if rank is None:  # LoKr with both halves full: scale 1 whatever alpha says (LyCORIS)
        alpha = None if alpha_tensor is None else float(alpha_tensor.float().item())
        return [*out, ModuleDelta(module, kind, parts, 1.0, alpha=alpha)]
    if alpha_tensor is not None:
        alpha = float(alpha_tensor.float().item())
        return [*out, ModuleDelta(module, kind, parts, alpha / rank, alpha=alpha)]
    if header.lora_alpha is not None:
        alpha, scale = header.lora_alpha.for_module(module, rank)
        return [*out, ModuleDelta(module, kind, parts, scale, alpha=alpha)]
    if header.given_alpha is not None:
        return [*out, ModuleDelta(module, kind, parts, header.given_alpha / rank, alpha=header.given_alpha)]
    return [*out, delta]


def _peft_header(weights: Path, config: dict, keys: list[str], metadata: dict[str, str]) -> AdapterHeader:
    odd = sorted(k for k in keys if not (match := _PEFT_KEY.fullmatch(k)) or ".lora_" in match.group(1))
    if odd:  # e.g. lora_down (ComfyUI), lokr_* (LyCORIS), lora_B.bias (PEFT's lora_bias option)
        raise ModelLoadError(f"{len(odd)} keys are not PEFT LoRA keys, e.g. {odd[:3]}", path=weights)
    groups = group_keys(keys, weights)
    kinds = set()
    for name, parts in groups.modules.items():
        names = {part: key for part, key in parts.items() if part != "weight"}  # "weight": a trained bias
        if not names:
            continue
        kind = _module_kind(weights, name, names)
        if (kind == AdapterKind.DORA) != config["use_dora"]:
            raise ModelLoadError(f"{name} {'has' if kind == AdapterKind.DORA else 'lacks'} a DoRA magnitude but "
                                 f"{PEFT_CONFIG} says use_dora={config['use_dora']}", path=weights)
        kinds.add(kind)
    if not kinds:
        raise ModelLoadError("the PEFT file holds no LoRA tensors", path=weights)
    extra = {k: str(config[k]) for k in ("trigger_word", "tag_position") if config.get(k) and k not in metadata}
    return AdapterHeader(weights, "peft", kinds.pop(), {**metadata, **extra}, PEFT_CONFIG, (), groups,
                         config["alpha"])


def _peft_config(path: Path) -> dict:
    data = read_json_object(path, "PEFT adapter config")
    if data.get("peft_type") != "LORA":
        raise ModelLoadError(f"PEFT adapter type {data.get('peft_type')!r} is not supported (only LORA, with or "
                             "without DoRA)", path=path)
    if data.get("fan_in_fan_out"):
        raise ModelLoadError("fan_in_fan_out adapters (transposed Conv1D weights) are not for this model", path=path)
    try:
        alpha = LoraAlpha(float(data.get("lora_alpha", 8)), PEFT_CONFIG, bool(data.get("use_rslora")),
                          dict(data.get("alpha_pattern") or {}))
        return {"alpha": alpha, "use_dora": bool(data.get("use_dora")),
                **{k: data[k] for k in ("trigger_word", "tag_position") if k in data}}
    except (TypeError, ValueError) as err:
        raise ModelLoadError(f"the PEFT adapter config has a malformed value ({err})", path=path) from err


def _module_kind(path: Path, module: str, parts: dict) -> DeltaKind:
    names = set(parts) - {"alpha", "dora_scale"}
    if names == {"lora_down", "lora_up"}:
        return AdapterKind.DORA if "dora_scale" in parts else AdapterKind.LORA
    half = {i: {f"lokr_w{i}"} <= names or {f"lokr_w{i}_a", f"lokr_w{i}_b"} <= names for i in "12"}
    if names and all(n.startswith("lokr_") for n in names) and half["1"] and half["2"]:
        return AdapterKind.LOKR
    if names and all(n.startswith("hada_") for n in names) and {f"hada_w{i}_{x}" for i in "12" for x in "ab"} <= names:
        return AdapterKind.LOHA
    if names and names <= {"diff", "diff_b"} and "dora_scale" not in parts:
        return DIFF
    raise ModelLoadError(f"{module} has an incomplete or mixed set of tensors ({', '.join(sorted(parts))})", path=path,
                         fix="the file is damaged or was cut short; export or download it again")


def _aside(groups: KeyGroups) -> str:
    return "; ".join(f"{what} ({len(keys)} keys, e.g. {keys[0]})" for what, keys in groups.set_aside.items())


def _replacement(name: str, value: torch.Tensor) -> ModuleDelta:
    module, _, param = name.rpartition(".")
    return ModuleDelta(module, AdapterKind.FULL, {"weight": value}, param=param)
