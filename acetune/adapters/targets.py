"""Which decoder Linear layers an adapter config selects, as fully qualified module names.

Both backends get this exact list. PEFT would otherwise match short names by suffix and
LyCORIS wraps every Linear/Conv1d it finds (training spec §4.3), so the time embeddings,
`condition_embedder` and `proj_in` would be adapted behind the user's back. An explicit list
is also what PEFT writes into `target_modules`, so the saved config says exactly what was
trained.
"""

from __future__ import annotations

import re

from torch import nn

from acetune.config import AdapterConfig, AttentionTargets
from acetune.errors import ConfigError

ATTENTION_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_PROJECTIONS = ("gate_proj", "up_proj", "down_proj")

_PROJECTION = re.compile(r"^layers\.\d+\.(self_attn|cross_attn|mlp)\.\w+_proj$")
_ATTENTION_MODULES = {
    AttentionTargets.BOTH: ("self_attn", "cross_attn"),
    AttentionTargets.SELF: ("self_attn",),
    AttentionTargets.CROSS: ("cross_attn",),
}


def target_names_for(num_layers: int, config: AdapterConfig) -> list[str]:
    """The names the config selects in a decoder of `num_layers` layers, in module order.

    Pure (no module tree needed), so a loaded adapter's wrapped modules can be compared with
    what its recorded config asks for.
    """
    _check_projections(config)
    attention = _ATTENTION_MODULES[AttentionTargets(config.attention)]
    names: list[str] = []
    for index in range(num_layers):
        for block in attention:
            # module order inside a layer is q, k, v, o whatever order the config lists them in
            names.extend(f"layers.{index}.{block}.{proj}" for proj in ATTENTION_PROJECTIONS
                         if proj in config.projections)
        if config.target_mlp:
            names.extend(f"layers.{index}.mlp.{proj}" for proj in MLP_PROJECTIONS)
    return names


def target_module_names(decoder: nn.Module, config: AdapterConfig) -> list[str]:
    """Fully qualified names of the decoder's Linear layers that `config` adapts.

    `layers.N.{self_attn,cross_attn}.{q,k,v,o}_proj` per `attention` and `projections`, plus
    `layers.N.mlp.{gate,up,down}_proj` with `target_mlp`; never anything else. Each name is
    checked to be a plain `nn.Linear` in this decoder (an adapted decoder is refused).
    """
    require_plain_decoder(decoder)
    names = target_names_for(len(decoder.layers), config)
    modules = dict(decoder.named_modules())
    missing = [name for name in names if type(modules.get(name)) is not nn.Linear]
    if missing:
        raise ValueError(f"decoder has no Linear layer {missing[0]}; is this the ACE-Step DiT decoder?")
    if not names:
        raise ConfigError("the adapter selects no modules",
                          fix="list at least one of q_proj, k_proj, v_proj, o_proj in adapter.projections "
                              "or set adapter.target_mlp = true")
    return names


def require_plain_decoder(decoder: nn.Module) -> None:
    """Refuse a decoder that already carries an adapter: a second one would stack silently.

    PEFT replaces the projection layers by its own classes; LyCORIS patches their `forward`
    and we register its network as `lycoris_network`.
    """
    if not isinstance(getattr(decoder, "layers", None), nn.ModuleList):
        raise ValueError(f"expected the DiT decoder (with a `layers` ModuleList), got {type(decoder).__name__}")
    adapted = [name for name, module in decoder.named_modules()
               if _PROJECTION.match(name) and (type(module) is not nn.Linear or hasattr(module, "_lycoris_wrappers"))]
    if adapted or hasattr(decoder, "lycoris_network"):
        where = adapted[0] if adapted else "lycoris_network"
        raise ValueError(f"this decoder already has an adapter attached (at {where}); "
                         "attach or load adapters into a freshly loaded decoder")


def _check_projections(config: AdapterConfig) -> None:
    unknown = [p for p in config.projections if p not in ATTENTION_PROJECTIONS]
    if unknown:
        raise ConfigError(f"unknown attention projection(s) {unknown} in adapter.projections",
                          fix=f"choose from {', '.join(ATTENTION_PROJECTIONS)}")
    if len(set(config.projections)) != len(config.projections):
        raise ConfigError(f"adapter.projections lists a projection twice: {list(config.projections)}")
