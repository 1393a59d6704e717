"""LoKr and LoHa through LyCORIS, restricted to exactly the configured modules.

`create_lycoris` applies a preset that keeps LyCORIS's class-level rule "wrap every Linear,
Conv1d, Conv2d, Conv3d, GroupNorm, LayerNorm", and it matches target names with `re.match`
from the start of the qualified name, so the upstream call wraps all 272 Linear/Conv1d layers
of the decoder whatever the target list says (training spec §4.3). We instead set a preset
with no module classes and one anchored, escaped regex per target name, build
`LycorisNetwork` directly, and check the wrapped names equal the target list. The preset is
class-level state in LyCORIS, so it is set only while the network is built and then restored.

LyCORIS patches each target Linear's `forward` and keeps its weights in the network, which
we register on the decoder as `lycoris_network`: `decoder.to()`, `.train()`, `.eval()` and
`named_parameters()` then cover the adapter. LyCORIS is imported inside the functions
(seconds of import time at CLI start).
"""

from __future__ import annotations

import json
import logging
import re
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from acetune.adapters.attached import AttachedAdapter
from acetune.adapters.config_json import config_from_json
from acetune.adapters.kinds import KINDS
from acetune.adapters.safetensors_io import read_safetensors, require_same_tensors
from acetune.adapters.targets import ATTENTION_PROJECTIONS, MLP_PROJECTIONS, target_module_names
from acetune.config import AdapterConfig, AdapterKind, AttentionTargets
from acetune.errors import ConfigError, ModelLoadError

NETWORK_ATTRIBUTE = "lycoris_network"
PREFIX = "lycoris"
_PRESET_ATTRIBUTES = ("ENABLE_CONV", "TARGET_REPLACE_MODULE", "TARGET_REPLACE_NAME", "MODULE_ALGO_MAP",
                      "NAME_ALGO_MAP", "LORA_PREFIX", "USE_FNMATCH", "TARGET_EXCLUDE_NAME")


def lycoris_name(module_name: str) -> str:
    """LyCORIS's module key: `layers.0.self_attn.q_proj` -> `lycoris_layers_0_self_attn_q_proj`."""
    return f"{PREFIX}_{module_name}".replace(".", "_")


def attach_lycoris(decoder: nn.Module, config: AdapterConfig, targets: list[str]) -> AttachedAdapter:
    """Freeze the decoder and wrap exactly `targets` with LoKr or LoHa."""
    from lycoris import LycorisNetwork

    _route_lycoris_logging()
    kind = AdapterKind(config.kind)
    _check(config, kind)
    decoder.requires_grad_(False)
    with _only_these_modules(LycorisNetwork, targets), _quiet_lycoris_info():
        network = LycorisNetwork(
            decoder, multiplier=1.0, lora_dim=config.rank, alpha=config.alpha, conv_lora_dim=0,
            dropout=0.0, rank_dropout=0.0, module_dropout=0.0, use_tucker=config.use_tucker, use_scalar=False,
            network_module=kind.value, decompose_both=config.decompose_both, factor=config.factor,
            weight_decompose=False, full_matrix=False, bypass_mode=False, unbalanced_factorization=False,
        )
    wrapped = [lora.lora_name for lora in network.loras]
    if wrapped != [lycoris_name(name) for name in targets]:
        raise RuntimeError(f"LyCORIS wrapped {len(wrapped)} modules instead of the {len(targets)} targets "
                           f"(e.g. {wrapped[:3]}); the restriction no longer works with this LyCORIS version")
    network.apply_to()
    first = next(decoder.parameters())
    network.to(first.device)  # LyCORIS creates its weights on the CPU; they stay in fp32
    network.requires_grad_(True)
    decoder.add_module(NETWORK_ATTRIBUTE, network)
    trainable = tuple(name for name, p in decoder.named_parameters() if p.requires_grad)
    return AttachedAdapter(kind, config, decoder, tuple(targets), trainable, network)


def save_lycoris(attached: AttachedAdapter, folder: Path, metadata: dict[str, str]) -> None:
    """LyCORIS's own `save_weights` with the metadata the upstream loaders read.

    `<algo>_config` uses the upstream LoKRConfig field names (linear_dim, linear_alpha, ...),
    so UP-new's loader rebuilds it; `acetune_adapter_config` (in `metadata`) is exact.
    """
    kind = attached.kind
    header = {"algo": kind.value, "format": "lycoris", KINDS[kind].upstream_config: _upstream_config(attached.config),
              **metadata}
    attached.backend.save_weights(str(folder / KINDS[kind].weights_file), None, header)


def load_lycoris(decoder: nn.Module, folder: Path, *, kind: AdapterKind) -> AttachedAdapter:
    """Rebuild the network from the file's metadata and load its tensors strictly."""
    path = folder / KINDS[kind].weights_file
    tensors, metadata = read_safetensors(path)
    algo = metadata.get("algo", kind.value)
    if algo != kind.value:
        raise ModelLoadError(f"the file says algo {algo!r} but is named for {kind.value}", path=path)
    config = _config_from_metadata(metadata, kind, path)
    flags = {name: p.requires_grad for name, p in decoder.named_parameters()}
    attached = attach_lycoris(decoder, config, _targets(decoder, config, path))
    network = attached.backend
    try:
        expected = network.state_dict()
        require_same_tensors({k: tuple(v.shape) for k, v in expected.items()},
                             {k: tuple(v.shape) for k, v in tensors.items()}, path)
        # LyCORIS derives each module's scale from alpha when it is built; a different alpha in
        # the file would load into the buffer but not into the scale.
        for key in (k for k in expected if k.endswith(".alpha")):
            if not torch.equal(expected[key].cpu().float(), tensors[key].float()):
                raise ModelLoadError(f"{key} is {tensors[key].item()} in the file but the recorded config gives "
                                     f"{expected[key].item()}", path=path)
    except ModelLoadError:
        _remove(attached, flags)
        raise
    network.load_state_dict(tensors, strict=True)
    return attached


def _targets(decoder: nn.Module, config: AdapterConfig, path: Path) -> list[str]:
    try:
        return target_module_names(decoder, config)
    except ConfigError as err:
        raise ModelLoadError(f"the recorded adapter config is unusable ({err})", path=path) from err


def _remove(attached: AttachedAdapter, flags: dict[str, bool]) -> None:
    """Undo a failed load: restore the patched forwards, drop the network, restore grad flags."""
    attached.backend.restore()
    delattr(attached.decoder, NETWORK_ATTRIBUTE)
    for name, param in attached.decoder.named_parameters():
        param.requires_grad_(flags[name])


def _check(config: AdapterConfig, kind: AdapterKind) -> None:
    if config.rank < 1:
        raise ConfigError(f"adapter.rank (LyCORIS linear_dim) must be at least 1, got {config.rank}")
    if config.alpha <= 0:
        raise ConfigError(f"adapter.alpha must be positive, got {config.alpha}")
    if config.bias != "none":
        raise ConfigError(f"adapter.bias = {config.bias!r} is a PEFT option; {kind.value} trains no biases",
                          fix='set adapter.bias = "none"')
    if config.factor == 0 or config.factor < -1:
        raise ConfigError(f"adapter.factor must be -1 (automatic) or a positive integer, got {config.factor}")
    if kind is AdapterKind.LOHA and (config.decompose_both or config.factor != -1):
        raise ConfigError("adapter.factor and adapter.decompose_both are LoKr options; LoHa has neither",
                          fix="leave them at -1 and false, or choose kind = lokr")


@contextmanager
def _only_these_modules(network_class, targets: list[str]):
    """Point LyCORIS's class-level preset at exactly `targets` while one network is built."""
    saved = {name: getattr(network_class, name) for name in _PRESET_ATTRIBUTES}
    network_class.apply_preset({
        "enable_conv": False, "target_module": [], "module_algo_map": {}, "name_algo_map": {},
        "exclude_name": [], "use_fnmatch": False, "lora_prefix": PREFIX,
        # re.match anchors only the start; \Z anchors the end, escape keeps the dots literal
        "target_name": [re.escape(name) + r"\Z" for name in targets],
    })
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(network_class, name, value)


def _route_lycoris_logging() -> None:
    """LyCORIS gives its logger its own stdout handler with ANSI colour codes, which reach pipes and log
    files as escapes and mix with command output. Drop that handler and let its records go through
    Python logging like every other library's (warnings then show once, plainly, on stderr)."""
    logger = logging.getLogger("LyCORIS")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = True


@contextmanager
def _quiet_lycoris_info():
    """LyCORIS logs INFO lines while it builds a network; they are not for our users (warnings still show)."""
    logger = logging.getLogger("LyCORIS")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def _upstream_config(config: AdapterConfig) -> str:
    """The `<algo>_config` JSON with the field names of the upstream LoKr/LoHa configs."""
    data = {"linear_dim": config.rank, "linear_alpha": config.alpha, "factor": config.factor,
            "use_tucker": config.use_tucker, "use_scalar": False,
            "target_modules": list(config.projections) + (list(MLP_PROJECTIONS) if config.target_mlp else []),
            "attention_type": AttentionTargets(config.attention).value, "target_mlp": config.target_mlp}
    if config.kind is AdapterKind.LOKR:
        data.update(decompose_both=config.decompose_both, weight_decompose=False, full_matrix=False,
                    bypass_mode=False, rs_lora=False, unbalanced_factorization=False)
    return json.dumps(data, sort_keys=True)


def _config_from_metadata(metadata: dict[str, str], kind: AdapterKind, path: Path) -> AdapterConfig:
    """Our exact config when recorded, else one rebuilt from the upstream `<algo>_config`."""
    if "acetune_adapter_config" in metadata:
        config = config_from_json(metadata["acetune_adapter_config"], path=path)
        if AdapterKind(config.kind) is not kind:
            raise ModelLoadError(f"the recorded config is for {config.kind.value}, the file for {kind.value}",
                                 path=path)
        return config
    text = metadata.get(KINDS[kind].upstream_config)
    if text is None:
        raise ModelLoadError(f"the file has no {kind.value}_config metadata, so the adapted modules are unknown",
                             path=path, fix="acetune loads LyCORIS files written by acetune, Side-Step or ACE-Step")
    try:
        data = json.loads(text)
        targets = [str(t).rsplit(".", 1)[-1] for t in data.get("target_modules", ATTENTION_PROJECTIONS)]
        return AdapterConfig(
            kind=kind, rank=int(data.get("linear_dim", 64)), alpha=float(data.get("linear_alpha", 128.0)),
            factor=int(data.get("factor", -1)), decompose_both=bool(data.get("decompose_both", False)),
            use_tucker=bool(data.get("use_tucker", False)),
            attention=AttentionTargets(data.get("attention_type", "both")),
            projections=tuple(p for p in ATTENTION_PROJECTIONS if p in targets),
            target_mlp=bool(data.get("target_mlp", False)) or any(p in targets for p in MLP_PROJECTIONS))
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError) as err:
        raise ModelLoadError(f"cannot read the {kind.value}_config metadata ({err})", path=path) from err
