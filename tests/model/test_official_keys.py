"""The full-size module tree against the official key table (spec model.md §2.2), written here as data.

Nothing below is derived from acetune's own model: the table is typed in from the spec, and the
model built on the meta device must match it name for name and shape for shape.
"""

from __future__ import annotations

import pytest

from acetune.model import build_model, named_config

D, KV, HD, F = 2048, 1024, 128, 6144

ATTENTION = {  # suffix -> shape, under self_attn. / cross_attn.
    "q_proj.weight": [2048, 2048], "k_proj.weight": [1024, 2048], "v_proj.weight": [1024, 2048],
    "o_proj.weight": [2048, 2048], "q_norm.weight": [128], "k_norm.weight": [128],
}
MLP = {"gate_proj.weight": [6144, 2048], "up_proj.weight": [6144, 2048], "down_proj.weight": [2048, 6144]}
ENCODER_LAYER = {
    "input_layernorm.weight": [2048], "post_attention_layernorm.weight": [2048],
    **{f"self_attn.{k}": v for k, v in ATTENTION.items()}, **{f"mlp.{k}": v for k, v in MLP.items()},
}
DIT_LAYER = {
    "self_attn_norm.weight": [2048], "cross_attn_norm.weight": [2048], "mlp_norm.weight": [2048],
    "scale_shift_table": [1, 6, 2048],
    **{f"self_attn.{k}": v for k, v in ATTENTION.items()}, **{f"cross_attn.{k}": v for k, v in ATTENTION.items()},
    **{f"mlp.{k}": v for k, v in MLP.items()},
}
TIME_EMBED = {
    "linear_1.weight": [2048, 256], "linear_1.bias": [2048], "linear_2.weight": [2048, 2048],
    "linear_2.bias": [2048], "time_proj.weight": [12288, 2048], "time_proj.bias": [12288],
}
DECODER_TOP = {
    "decoder.proj_in.1.weight": [2048, 192, 2], "decoder.proj_in.1.bias": [2048],
    **{f"decoder.time_embed.{k}": v for k, v in TIME_EMBED.items()},
    **{f"decoder.time_embed_r.{k}": v for k, v in TIME_EMBED.items()},
    "decoder.condition_embedder.weight": [2048, 2048], "decoder.condition_embedder.bias": [2048],
    "decoder.norm_out.weight": [2048], "decoder.proj_out.1.weight": [2048, 64, 2], "decoder.proj_out.1.bias": [64],
    "decoder.scale_shift_table": [1, 2, 2048],
}
ENCODER_TOP = {
    "encoder.text_projector.weight": [2048, 1024],
    "encoder.lyric_encoder.embed_tokens.weight": [2048, 1024], "encoder.lyric_encoder.embed_tokens.bias": [2048],
    "encoder.lyric_encoder.norm.weight": [2048],
    "encoder.timbre_encoder.embed_tokens.weight": [2048, 64], "encoder.timbre_encoder.embed_tokens.bias": [2048],
    "encoder.timbre_encoder.norm.weight": [2048], "encoder.timbre_encoder.special_token": [1, 1, 2048],
}
TOKENIZER_TOP = {
    "tokenizer.audio_acoustic_proj.weight": [2048, 64], "tokenizer.audio_acoustic_proj.bias": [2048],
    "tokenizer.attention_pooler.embed_tokens.weight": [2048, 2048],
    "tokenizer.attention_pooler.embed_tokens.bias": [2048], "tokenizer.attention_pooler.norm.weight": [2048],
    "tokenizer.attention_pooler.special_token": [1, 1, 2048],
    "tokenizer.quantizer.project_in.weight": [6, 2048], "tokenizer.quantizer.project_in.bias": [6],
    "tokenizer.quantizer.project_out.weight": [2048, 6], "tokenizer.quantizer.project_out.bias": [2048],
}
DETOKENIZER_TOP = {
    "detokenizer.embed_tokens.weight": [2048, 2048], "detokenizer.embed_tokens.bias": [2048],
    "detokenizer.norm.weight": [2048], "detokenizer.special_tokens": [1, 5, 2048],
    "detokenizer.proj_out.weight": [64, 2048], "detokenizer.proj_out.bias": [64],
}


def official_2b_table() -> dict[str, list[int]]:
    table: dict[str, list[int]] = {}
    for i in range(24):
        table.update({f"decoder.layers.{i}.{k}": v for k, v in DIT_LAYER.items()})
    table.update(DECODER_TOP)
    table.update(ENCODER_TOP)
    for prefix, count in (("encoder.lyric_encoder", 8), ("encoder.timbre_encoder", 4),
                          ("tokenizer.attention_pooler", 2), ("detokenizer", 2)):
        for i in range(count):
            table.update({f"{prefix}.layers.{i}.{k}": v for k, v in ENCODER_LAYER.items()})
    table.update(TOKENIZER_TOP)
    table.update(DETOKENIZER_TOP)
    table["null_condition_emb"] = [1, 1, 2048]
    return table


@pytest.fixture(scope="module")
def model_2b():
    return build_model(named_config("2b"), meta=True)


def test_2b_state_dict_matches_official_table(model_2b):
    ours = {k: list(v.shape) for k, v in model_2b.state_dict().items()}
    table = official_2b_table()
    assert len(table) == 677
    assert sorted(set(table) - set(ours)) == []
    assert sorted(set(ours) - set(table)) == []
    assert {k: v for k, v in ours.items() if table[k] != v} == {}


def test_2b_parameter_totals_match_published_counts(model_2b):
    def count(prefix: str) -> int:
        return sum(p.numel() for n, p in model_2b.named_parameters() if n.startswith(prefix))

    assert count("decoder.") == 1_575_458_880
    assert count("decoder.layers.") == 1_510_404_096
    assert count("encoder.") == 608_367_616
    assert count("encoder.lyric_encoder.") == 404_789_248
    assert count("encoder.timbre_encoder.") == 201_481_216
    assert count("tokenizer.") == 105_032_198
    assert count("detokenizer.") == 105_011_776
    assert sum(p.numel() for p in model_2b.parameters()) == 2_393_872_518


def test_no_persistent_buffers(model_2b):
    params = {n for n, _ in model_2b.named_parameters()}
    assert set(model_2b.state_dict()) == params


def test_xl_tree_follows_spec_section_9():
    model = build_model(named_config("xl"), meta=True)
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    table_2b = official_2b_table()
    # the condition side keeps the 2B widths
    for key, shape in table_2b.items():
        if not key.startswith("decoder."):
            assert shapes[key] == shape, key
    # the decoder is 2560 wide, 32 layers, 32 query / 8 kv heads of 128, MLP 9728
    assert sum(1 for k in shapes if k.startswith("decoder.layers.") and k.endswith(".scale_shift_table")) == 32
    assert shapes["decoder.layers.31.self_attn.q_proj.weight"] == [4096, 2560]
    assert shapes["decoder.layers.31.self_attn.k_proj.weight"] == [1024, 2560]
    assert shapes["decoder.layers.0.cross_attn.v_proj.weight"] == [1024, 2560]
    assert shapes["decoder.layers.0.mlp.gate_proj.weight"] == [9728, 2560]
    assert shapes["decoder.condition_embedder.weight"] == [2560, 2048]
    assert shapes["decoder.proj_in.1.weight"] == [2560, 192, 2]
    assert shapes["null_condition_emb"] == [1, 1, 2048]
    assert len(shapes) == 677 + 8 * 19
