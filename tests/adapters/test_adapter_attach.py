"""attach(): what trains, what stays frozen, zero-init outputs, checkpointing, groups, state round trip."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from acetune.adapters import attach, full_param_groups, target_module_names
from acetune.adapters.lycoris_backend import lycoris_name
from acetune.config import AdapterConfig, AdapterKind, AttentionTargets
from acetune.errors import ConfigError, ModelLoadError

ADAPTERS = [AdapterKind.LORA, AdapterKind.DORA, AdapterKind.LOKR, AdapterKind.LOHA]
TINY_DECODER_PARAMS = 227_968


# Hand counts on the tiny decoder (width 64, kv 32, MLP 128), rank 4:
#   LoRA  r*(in+out): q,o 512, k,v 384 -> 1792 per attention block; gate/up/down 768 each.
#   DoRA  adds one magnitude per output row: 192 per attention block, 320 per MLP.
#   LoKr  (full-matrix at this width) q,o 8x8+8x8, k,v 4x8+8x8 -> 448 per block; each MLP proj 160.
#   LoHa  2r*(in+out): q,o 1024, k,v 768 -> 3584 per block; 1536 per MLP proj.
@pytest.mark.parametrize(("kind", "attention", "mlp", "count"), [
    (AdapterKind.LORA, AttentionTargets.BOTH, False, 4 * 1792),
    (AdapterKind.LORA, AttentionTargets.SELF, False, 2 * 1792),
    (AdapterKind.LORA, AttentionTargets.BOTH, True, 4 * 1792 + 2 * 3 * 768),
    (AdapterKind.DORA, AttentionTargets.BOTH, True, 4 * (1792 + 192) + 2 * (3 * 768 + 320)),
    (AdapterKind.LOKR, AttentionTargets.CROSS, False, 2 * 448),
    (AdapterKind.LOKR, AttentionTargets.BOTH, True, 4 * 448 + 2 * 3 * 160),
    (AdapterKind.LOHA, AttentionTargets.BOTH, True, 4 * 3584 + 2 * 3 * 1536),
    (AdapterKind.FULL, AttentionTargets.BOTH, False, TINY_DECODER_PARAMS),
])
def test_only_the_adapter_trains(new_decoder, config_for, kind, attention, mlp, count):
    decoder = new_decoder()
    base_names = {name for name, _ in decoder.named_parameters()}
    config = config_for(kind, attention=attention, target_mlp=mlp)
    targets = target_module_names(decoder, config) if kind is not AdapterKind.FULL else []
    attached = attach(decoder, config)
    trainable = {name for name, p in decoder.named_parameters() if p.requires_grad}
    assert attached.num_trainable == count
    assert set(attached.trainable_names) == trainable
    if kind is AdapterKind.FULL:
        assert trainable == base_names
        return
    assert list(attached.targets) == targets
    modules = dict(decoder.named_modules())
    if kind in (AdapterKind.LORA, AdapterKind.DORA):
        assert all(".lora_" in name for name in trainable)
        wrapped = {name for name, m in modules.items() if hasattr(m, "base_layer") and not name.endswith("base_layer")}
    else:
        owners = {name.split(".")[1] for name in trainable}
        assert all(name.startswith("lycoris_network.") for name in trainable)
        assert owners == {lycoris_name(t) for t in targets}
        wrapped = {name for name, m in modules.items() if "_lycoris_wrappers" in vars(m)}
    assert wrapped == set(targets)  # nothing else (time embeddings, condition_embedder, proj_in) is touched


@pytest.mark.parametrize("kind", [*ADAPTERS, AdapterKind.FULL])
def test_output_equals_base_after_attach_and_a_step_moves_only_trainables(
        new_decoder, config_for, forward, train_step, kind):
    decoder = new_decoder()
    base = forward(decoder)
    attached = attach(decoder, config_for(kind, target_mlp=True), seed=0)
    after_attach = forward(decoder)
    if kind is AdapterKind.DORA:  # W * |W| / |W| is exact only up to rounding
        torch.testing.assert_close(after_attach, base, rtol=0, atol=1e-6)
    else:  # zero-initialised B / w2: the adapter adds exact zeros
        assert torch.equal(after_attach, base)

    before = {k: v.clone() for k, v in decoder.state_dict().items()}
    train_step(attached)
    after = decoder.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed, "the step changed nothing"
    assert changed <= set(attached.trainable_names), sorted(changed - set(attached.trainable_names))[:3]
    if kind in (AdapterKind.LORA, AdapterKind.DORA):
        assert {k for k in attached.trainable_names if ".lora_B." in k} <= changed
    assert not torch.equal(forward(decoder), base)


@pytest.mark.parametrize("kind", ADAPTERS)
def test_gradient_checkpointing_reaches_the_adapter(new_decoder, config_for, inputs, kind):
    def grads(ratio: float) -> dict[str, torch.Tensor]:
        decoder = new_decoder()
        attached = attach(decoder, config_for(kind), seed=0)
        assert decoder.set_gradient_checkpointing(ratio) == ([0, 1] if ratio else [])
        decoder.train()
        decoder(*inputs).pow(2).mean().backward()
        return {n: p.grad for n, p in attached.trainable_parameters.items()}

    plain, checkpointed = grads(0.0), grads(1.0)
    assert any(g is not None and g.abs().sum() > 0 for g in checkpointed.values())
    for name, grad in plain.items():
        if grad is None:
            assert checkpointed[name] is None, name
        else:
            torch.testing.assert_close(checkpointed[name], grad, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", [*ADAPTERS, AdapterKind.FULL])
def test_trainable_state_round_trips_exactly(new_decoder, config_for, train_step, tmp_path, kind):
    decoder = new_decoder()
    attached = attach(decoder, config_for(kind), seed=0)
    train_step(attached)
    saved = attached.trainable_state_dict()
    assert list(saved) == list(attached.trainable_names)
    save_file(saved, str(tmp_path / "state.safetensors"))
    saved[next(iter(saved))].add_(1.0)  # copies, not views: the live weights must not move
    train_step(attached)
    attached.load_trainable_state_dict(load_file(str(tmp_path / "state.safetensors")))
    reloaded = load_file(str(tmp_path / "state.safetensors"))
    assert all(torch.equal(attached.trainable_parameters[k].detach(), v) for k, v in reloaded.items())


def test_trainable_state_loading_is_strict(new_decoder, config_for):
    attached = attach(new_decoder(), config_for(AdapterKind.LORA))
    state = attached.trainable_state_dict()
    first = next(iter(state))
    with pytest.raises(ModelLoadError, match="1 missing"):
        attached.load_trainable_state_dict({k: v for k, v in state.items() if k != first})
    with pytest.raises(ModelLoadError, match="1 unexpected"):
        attached.load_trainable_state_dict({**state, "layers.9.extra": torch.zeros(1)})
    with pytest.raises(ModelLoadError, match="shape"):
        attached.load_trainable_state_dict({**state, first: torch.zeros(3)})


def test_adapter_groups_keep_magnitudes_out_of_weight_decay(new_decoder, config_for):
    attached = attach(new_decoder(), config_for(AdapterKind.DORA))
    groups = {g["name"]: g for g in attached.param_groups(1e-4, 0.1)}
    assert set(groups) == {"adapter", "adapter_no_decay"}
    assert groups["adapter"]["weight_decay"] == 0.1 and groups["adapter_no_decay"]["weight_decay"] == 0.0
    names = {id(p): n for n, p in attached.trainable_parameters.items()}
    assert all("lora_magnitude_vector" in names[id(p)] for p in groups["adapter_no_decay"]["params"])
    assert len(groups["adapter_no_decay"]["params"]) == 16
    assert len(groups["adapter"]["params"]) + 16 == len(names)


def test_full_groups_apply_multipliers_and_spare_norms_biases_and_tables(new_decoder):
    config = AdapterConfig(kind=AdapterKind.FULL, allow_full=True, lr_attention=2.0, lr_mlp=3.0, lr_norms=0.5,
                           lr_embeddings=0.25)
    decoder = new_decoder()
    attached = attach(decoder, config)
    groups = attached.param_groups(1e-4, 0.1)
    assert [g["name"] for g in groups] == [g["name"] for g in full_param_groups(decoder, config, 1e-4, 0.1)]
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"attention", "mlp", "norms_no_decay", "embeddings", "embeddings_no_decay"}
    lrs = {name: g["lr"] for name, g in by_name.items()}
    assert lrs == pytest.approx({"attention": 2e-4, "mlp": 3e-4, "norms_no_decay": 5e-5, "embeddings": 2.5e-5,
                                 "embeddings_no_decay": 2.5e-5})
    names = {id(p): n for n, p in decoder.named_parameters()}
    grouped = [names[id(p)] for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(names.values())  # every parameter exactly once
    for group in groups:
        members = [names[id(p)] for p in group["params"]]
        spared = [n for n in members if n.endswith((".bias", "scale_shift_table")) or "norm" in n]
        if group["weight_decay"]:
            assert not spared, spared
        else:
            assert spared == members
    assert "layers.0.self_attn.q_norm.weight" in [names[id(p)] for p in by_name["norms_no_decay"]["params"]]
    assert "scale_shift_table" in [names[id(p)] for p in by_name["norms_no_decay"]["params"]]
    assert "time_embed.linear_1.bias" in [names[id(p)] for p in by_name["embeddings_no_decay"]["params"]]
    torch.optim.AdamW(groups)  # a valid optimizer spec


@pytest.mark.parametrize(("changes", "message"), [
    ({"kind": AdapterKind.FULL}, "allow_full"),
    ({"kind": AdapterKind.LORA, "rank": 0}, "rank"),
    ({"kind": AdapterKind.LORA, "bias": "some"}, "bias"),
    ({"kind": AdapterKind.LORA, "dropout": 1.0}, "dropout"),
    ({"kind": AdapterKind.LOKR, "bias": "all"}, "PEFT option"),
    ({"kind": AdapterKind.LOKR, "factor": 0}, "factor"),
    ({"kind": AdapterKind.LOHA, "decompose_both": True}, "LoKr options"),
])
def test_bad_configs_are_refused_before_touching_the_decoder(new_decoder, forward, changes, message):
    decoder = new_decoder()
    base = forward(decoder)
    with pytest.raises(ConfigError, match=message):
        attach(decoder, AdapterConfig(**changes))
    assert all(p.requires_grad for p in decoder.parameters())
    assert torch.equal(forward(decoder), base)


def test_seeded_attach_is_reproducible_and_leaves_the_global_rng_alone(new_decoder, config_for):
    decoders = [new_decoder() for _ in range(3)]  # building one reseeds the global RNG
    state = torch.get_rng_state()
    first = attach(decoders[0], config_for(AdapterKind.LOKR), seed=7).trainable_state_dict()
    second = attach(decoders[1], config_for(AdapterKind.LOKR), seed=7).trainable_state_dict()
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(first[k], second[k]) for k in first)
    other = attach(decoders[2], config_for(AdapterKind.LOKR), seed=8).trainable_state_dict()
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_lycoris_preset_is_restored_and_lycoris_decoder_is_refused_twice(new_decoder, config_for):
    from lycoris import LycorisNetwork

    before = (list(LycorisNetwork.TARGET_REPLACE_MODULE), list(LycorisNetwork.TARGET_REPLACE_NAME))
    decoder = new_decoder()
    attach(decoder, config_for(AdapterKind.LOKR))
    assert (list(LycorisNetwork.TARGET_REPLACE_MODULE), list(LycorisNetwork.TARGET_REPLACE_NAME)) == before
    with pytest.raises(ValueError, match="already has an adapter"):
        attach(decoder, config_for(AdapterKind.LORA))


def test_adapted_decoder_keeps_its_dit_interface(new_decoder, config_for):
    for kind in ADAPTERS:
        decoder = new_decoder()
        attached = attach(decoder, config_for(kind))
        assert attached.decoder is decoder
        assert type(decoder).__name__ == "DiTModel" and len(decoder.layers) == 2
        assert decoder.config.hidden_size == 64
