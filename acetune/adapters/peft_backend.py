"""LoRA and DoRA through PEFT: inject, save in PEFT's folder format, load strictly.

The decoder is wrapped with `get_peft_model` exactly as the upstream trainer does, so
`save_pretrained` writes `base_model.model.layers.N....lora_A.weight` keys and the folder
loads in the ACE-Step app with `PeftModel.from_pretrained(decoder, folder)`. PEFT injects its
layers into the decoder in place, so the trainer keeps calling our `DiTModel` (its forward
signature, `set_gradient_checkpointing`, `config`, `layers`); the `PeftModel` wrapper is kept
only for saving. Its own `forward` is never called: the FEATURE_EXTRACTION wrapper expects
`input_ids`, and for plain LoRA it adds nothing but optional per-call adapter switching.

PEFT is imported inside the functions: importing it costs seconds at CLI start.
"""

from __future__ import annotations

import re
from pathlib import Path

from torch import nn

from acetune.adapters.attached import AttachedAdapter
from acetune.adapters.config_json import config_from_json, read_json_object
from acetune.adapters.diffusers_header import peft_file_header
from acetune.adapters.kinds import PEFT_CONFIG as CONFIG_FILE
from acetune.adapters.kinds import PEFT_WEIGHTS as WEIGHTS_FILE
from acetune.adapters.safetensors_io import read_safetensors, require_same_tensors, rewrite_metadata
from acetune.adapters.targets import ATTENTION_PROJECTIONS, target_names_for
from acetune.config import AdapterConfig, AdapterKind, AttentionTargets
from acetune.errors import ConfigError, ModelLoadError

BIAS_CHOICES = ("none", "all", "lora_only")
_TARGET = re.compile(r"^layers\.(\d+)\.(self_attn|cross_attn|mlp)\.(\w+)$")


def attach_peft(decoder: nn.Module, config: AdapterConfig, targets: list[str]) -> AttachedAdapter:
    """Inject LoRA/DoRA into exactly `targets`; everything else in the decoder is frozen."""
    from peft import get_peft_model

    _check(config)
    peft_model = get_peft_model(decoder, _lora_config(config, targets))
    return _attached(decoder, config, peft_model, None)


def save_peft(attached: AttachedAdapter, folder: Path, metadata: dict[str, str]) -> None:
    """PEFT's own `save_pretrained`, then our metadata added to the safetensors header.

    adapter_config.json stays exactly what PEFT writes: PEFT accepts unknown keys there only
    with a warning telling the user to upgrade PEFT, which the ACE-Step app would show on
    every load. PEFT's generated README.md (a model-card template) is not kept. The header also
    gets diffusers' `lora_adapter_metadata` where diffusers can read the file, so
    `AceStepPipeline.load_lora_weights(folder)` loads it at the trained strength (diffusers_header).
    """
    attached.backend.save_pretrained(str(folder))
    (folder / "README.md").unlink(missing_ok=True)
    rewrite_metadata(folder / WEIGHTS_FILE, {"format": "pt", **metadata, **peft_file_header(attached)})


def load_peft(decoder: nn.Module, folder: Path) -> AttachedAdapter:
    """Re-inject from adapter_config.json and load adapter_model.safetensors strictly.

    The injection follows the folder's own PEFT config, so folders written by other trainers
    load too, as long as acetune's `AdapterConfig` can describe what they adapt.
    """
    from peft import LoraConfig, PeftConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

    config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    if not weights_path.is_file():
        raise ModelLoadError(f"{CONFIG_FILE} is there but {WEIGHTS_FILE} is missing", path=folder,
                             fix="copy the whole adapter folder (PEFT .bin weights are not read)")
    raw = read_json_object(config_path)
    if raw.get("peft_type") != "LORA":
        raise ModelLoadError(f"PEFT adapter type {raw.get('peft_type')!r} is not supported (only LORA, with or "
                             "without DoRA)", path=config_path)
    try:
        lora_config = PeftConfig.from_pretrained(str(folder))
    except (TypeError, ValueError) as err:
        raise ModelLoadError(f"PEFT cannot read this adapter config ({err})", path=config_path) from err
    if not isinstance(lora_config, LoraConfig):
        raise ModelLoadError(f"expected a LoRA config, PEFT read a {type(lora_config).__name__}", path=config_path)
    lora_config.inference_mode = False  # loaded adapters stay trainable (resume, continued training)
    tensors, metadata = read_safetensors(weights_path)
    recorded = metadata.get("acetune_adapter_config")
    config = None if recorded is None else config_from_json(recorded, path=weights_path)
    if config is not None:
        _require_consistent(config, lora_config, config_path)
    flags = {name: p.requires_grad for name, p in decoder.named_parameters()}
    peft_model = get_peft_model(decoder, lora_config)
    try:
        if config is None:  # a folder from another trainer: describe it in our terms, or refuse
            config = _describe(decoder, lora_config, config_path)
        attached = _attached(decoder, config, peft_model, config_path)
        expected = {k: tuple(v.shape) for k, v in get_peft_model_state_dict(peft_model).items()}
        require_same_tensors(expected, {k: tuple(v.shape) for k, v in tensors.items()}, weights_path)
    except ModelLoadError:
        _remove(peft_model, decoder, flags)
        raise
    set_peft_model_state_dict(peft_model, tensors)
    return attached


def _attached(decoder: nn.Module, config: AdapterConfig, peft_model, source: Path | None) -> AttachedAdapter:
    """The record for an injected decoder, after checking PEFT wrapped exactly the config's targets."""
    wrapped = _wrapped(decoder)
    expected = target_names_for(len(decoder.layers), config)
    if sorted(wrapped) != sorted(expected):
        raise ModelLoadError(f"PEFT wrapped {len(wrapped)} modules but the adapter config selects {len(expected)}, "
                             f"e.g. {sorted(set(wrapped) ^ set(expected))[:3]}", path=source)
    trainable = tuple(name for name, p in decoder.named_parameters() if p.requires_grad)
    return AttachedAdapter(AdapterKind(config.kind), config, decoder, tuple(expected), trainable, peft_model)


def _wrapped(decoder: nn.Module) -> list[str]:
    from peft.tuners.lora import LoraLayer

    return [name for name, module in decoder.named_modules() if isinstance(module, LoraLayer)]


def _remove(peft_model, decoder: nn.Module, flags: dict[str, bool]) -> None:
    """Undo a failed load: PEFT's `unload` puts the base layers back; grad flags are restored."""
    peft_model.unload()
    for name, param in decoder.named_parameters():
        param.requires_grad_(flags[name])


def _lora_config(config: AdapterConfig, targets: list[str]):
    from peft import LoraConfig, TaskType

    # FEATURE_EXTRACTION is what the upstream trainer writes; the app loads either way.
    return LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
                      target_modules=list(targets), bias=config.bias, use_dora=config.kind is AdapterKind.DORA,
                      task_type=TaskType.FEATURE_EXTRACTION)


def _check(config: AdapterConfig) -> None:
    if config.rank < 1:
        raise ConfigError(f"adapter.rank must be at least 1, got {config.rank}")
    if config.alpha <= 0:
        raise ConfigError(f"adapter.alpha must be positive, got {config.alpha}")
    if not 0.0 <= config.dropout < 1.0:
        raise ConfigError(f"adapter.dropout must be within [0, 1), got {config.dropout}")
    if config.bias not in BIAS_CHOICES:
        raise ConfigError(f"adapter.bias must be one of {', '.join(BIAS_CHOICES)}, got {config.bias!r}")


def _describe(decoder: nn.Module, lora_config, source: Path) -> AdapterConfig:
    """An `AdapterConfig` for a foreign PEFT folder; refused when ours cannot say what it trains."""
    wrapped, num_layers = _wrapped(decoder), len(decoder.layers)
    unsupported = [name for name in ("rank_pattern", "alpha_pattern") if getattr(lora_config, name)]
    if lora_config.use_rslora:
        unsupported.append("use_rslora")
    parsed = [_TARGET.match(name) for name in wrapped]
    if unsupported or not wrapped or not all(parsed):
        what = f"uses {unsupported}" if unsupported else f"adapts modules such as {wrapped[:3]}"
        raise ModelLoadError(f"this PEFT adapter {what}, which acetune's adapter config cannot describe",
                             path=source)
    blocks = {m.group(2) for m in parsed}
    projections = {m.group(3) for m in parsed if m.group(2) != "mlp"}
    attention = (AttentionTargets.SELF if blocks & {"self_attn", "cross_attn"} == {"self_attn"} else
                 AttentionTargets.CROSS if blocks & {"self_attn", "cross_attn"} == {"cross_attn"} else
                 AttentionTargets.BOTH)
    config = AdapterConfig(kind=AdapterKind.DORA if lora_config.use_dora else AdapterKind.LORA,
                           rank=lora_config.r, alpha=float(lora_config.lora_alpha),
                           dropout=float(lora_config.lora_dropout), attention=attention,
                           projections=tuple(p for p in ATTENTION_PROJECTIONS if p in projections),
                           target_mlp="mlp" in blocks, bias=lora_config.bias)
    if set(target_names_for(num_layers, config)) != set(wrapped):
        raise ModelLoadError(f"this PEFT adapter adapts {len(wrapped)} modules in a pattern acetune's adapter "
                             "config cannot describe (e.g. only some layers)", path=source)
    return config


def _require_consistent(config: AdapterConfig, lora_config, path: Path) -> None:
    """The recorded acetune config and adapter_config.json must describe the same adapter."""
    ours = (config.rank, float(config.alpha), config.kind is AdapterKind.DORA, config.bias)
    theirs = (lora_config.r, float(lora_config.lora_alpha), bool(lora_config.use_dora), lora_config.bias)
    if AdapterKind(config.kind) not in (AdapterKind.LORA, AdapterKind.DORA) or ours != theirs:
        raise ModelLoadError(f"adapter_config.json (r, alpha, dora, bias = {theirs}) disagrees with the config "
                             f"recorded in {WEIGHTS_FILE} ({config.kind.value}: {ours})", path=path,
                             fix="restore the folder as it was saved; the two files were edited or mixed")
