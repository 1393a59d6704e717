"""Full decoder fine-tuning: no wrapper, every decoder weight trains; saved as `decoder.safetensors`.

Keys are the official checkpoint's (`decoder.` + our module path, which already follows the
official names), so the file can be merged into a full model folder by name.
"""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from acetune.adapters.attached import AttachedAdapter
from acetune.adapters.config_json import config_from_json
from acetune.adapters.groups import full_param_groups
from acetune.adapters.kinds import FULL_WEIGHTS as WEIGHTS_FILE
from acetune.adapters.safetensors_io import read_safetensors, require_same_tensors, write_safetensors
from acetune.config import AdapterConfig, AdapterKind
from acetune.errors import ConfigError, ModelLoadError

KEY_PREFIX = "decoder."
log = logging.getLogger(__name__)


def attach_full(decoder: nn.Module, config: AdapterConfig) -> AttachedAdapter:
    """Make every decoder parameter trainable; refused without the explicit `allow_full` opt-in."""
    if not config.allow_full:
        count = sum(p.numel() for p in decoder.parameters())
        raise ConfigError(f"adapter.kind = full trains all {count:,} decoder parameters (optimizer state alone "
                          "needs about 2x their memory) and writes a decoder-sized file",
                          fix="confirm with --set adapter.allow_full=true, or choose --adapter-kind "
                              f"{', '.join(k.value for k in AdapterKind if k is not AdapterKind.FULL)}")
    decoder.requires_grad_(True)
    full_param_groups(decoder, config, 1.0, 0.0)  # fails now, not at the first step, if a parameter has no group
    trainable = tuple(name for name, _ in decoder.named_parameters())
    return AttachedAdapter(AdapterKind.FULL, config, decoder, (), trainable, None)


def save_full(attached: AttachedAdapter, folder: Path, metadata: dict[str, str]) -> None:
    state = {KEY_PREFIX + key: value for key, value in attached.decoder.state_dict().items()}
    write_safetensors(state, folder / WEIGHTS_FILE, {"format": "pt", **metadata})


def load_full(decoder: nn.Module, folder: Path) -> AttachedAdapter:
    """Load all decoder weights strictly; a file without our recorded config trains with default groups."""
    path = folder / WEIGHTS_FILE
    tensors, metadata = read_safetensors(path)
    outside = sorted(key for key in tensors if not key.startswith(KEY_PREFIX))
    if outside:
        raise ModelLoadError(f"{len(outside)} keys lack the {KEY_PREFIX!r} prefix (e.g. {outside[0]})", path=path,
                             fix="a full fine-tune file holds only decoder.* weights")
    state = {key[len(KEY_PREFIX):]: value for key, value in tensors.items()}
    expected = {key: tuple(value.shape) for key, value in decoder.state_dict().items()}
    require_same_tensors(expected, {key: tuple(value.shape) for key, value in state.items()}, path)
    if "acetune_adapter_config" in metadata:
        config = config_from_json(metadata["acetune_adapter_config"], path=path)
        if AdapterKind(config.kind) is not AdapterKind.FULL:
            raise ModelLoadError(f"the recorded config is for {config.kind.value}, not a full fine-tune", path=path)
    else:
        log.info("%s has no recorded acetune config; using the default LR multipliers", path)
        config = AdapterConfig(kind=AdapterKind.FULL, allow_full=True)
    attached = attach_full(decoder, config)
    decoder.load_state_dict(state, strict=True)
    return attached
