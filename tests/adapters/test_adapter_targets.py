"""Target module lists: exactly the configured projections, never embeddings, convs or norms."""

from __future__ import annotations

import pytest

from acetune.adapters import attach, target_module_names
from acetune.config import AdapterConfig, AdapterKind, AttentionTargets
from acetune.errors import ConfigError

QKVO = ["q_proj", "k_proj", "v_proj", "o_proj"]
MLP = ["gate_proj", "up_proj", "down_proj"]


def expected(blocks: list[str], mlp: bool, projections: list[str] = QKVO) -> list[str]:
    names = []
    for layer in (0, 1):
        names += [f"layers.{layer}.{block}.{proj}" for block in blocks for proj in projections]
        names += [f"layers.{layer}.mlp.{proj}" for proj in MLP] if mlp else []
    return names


@pytest.mark.parametrize("mlp", [False, True])
@pytest.mark.parametrize(("attention", "blocks"), [
    (AttentionTargets.BOTH, ["self_attn", "cross_attn"]),
    (AttentionTargets.SELF, ["self_attn"]),
    (AttentionTargets.CROSS, ["cross_attn"]),
])
def test_targets_are_exactly_the_configured_projections(new_decoder, attention, blocks, mlp):
    names = target_module_names(new_decoder(), AdapterConfig(attention=attention, target_mlp=mlp))
    assert names == expected(blocks, mlp)


def test_both_with_mlp_spelled_out_for_layer_0(new_decoder):
    names = target_module_names(new_decoder(), AdapterConfig(target_mlp=True))
    assert names[:11] == [
        "layers.0.self_attn.q_proj", "layers.0.self_attn.k_proj", "layers.0.self_attn.v_proj",
        "layers.0.self_attn.o_proj", "layers.0.cross_attn.q_proj", "layers.0.cross_attn.k_proj",
        "layers.0.cross_attn.v_proj", "layers.0.cross_attn.o_proj", "layers.0.mlp.gate_proj",
        "layers.0.mlp.up_proj", "layers.0.mlp.down_proj",
    ]
    assert len(names) == 22
    assert not [n for n in names if n.startswith(("time_embed", "condition_embedder", "proj_in", "proj_out"))]


def test_projection_subset_keeps_module_order(new_decoder):
    config = AdapterConfig(attention=AttentionTargets.SELF, projections=("v_proj", "q_proj"))
    assert target_module_names(new_decoder(), config) == expected(["self_attn"], False, ["q_proj", "v_proj"])


def test_mlp_only(new_decoder):
    config = AdapterConfig(projections=(), target_mlp=True)
    assert target_module_names(new_decoder(), config) == [f"layers.{i}.mlp.{p}" for i in (0, 1) for p in MLP]


@pytest.mark.parametrize(("projections", "mlp", "message"), [
    (("q_proj", "x_proj"), False, "x_proj"),
    (("q_proj", "q_proj"), False, "twice"),
    ((), False, "no modules"),
])
def test_bad_target_specs_are_config_errors(new_decoder, projections, mlp, message):
    with pytest.raises(ConfigError, match=message):
        target_module_names(new_decoder(), AdapterConfig(projections=projections, target_mlp=mlp))


def test_an_adapted_decoder_is_refused(new_decoder, config_for):
    decoder = new_decoder()
    attach(decoder, config_for(AdapterKind.LORA))
    with pytest.raises(ValueError, match="already has an adapter"):
        attach(decoder, config_for(AdapterKind.LOKR))
    with pytest.raises(ValueError, match="already has an adapter"):
        target_module_names(decoder, AdapterConfig())
