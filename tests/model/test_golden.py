"""Parity with tensors computed by the official implementation on the tiny random model."""

from __future__ import annotations

import torch

from golden_tolerances import FORWARD_ATOL as ATOL

from acetune.train.objective import Draws, flow_matching_loss

CONDITION_INPUTS = (
    "text_hidden_states", "text_attention_mask", "lyric_hidden_states", "lyric_attention_mask",
    "refer_audio_acoustic_hidden_states_packed", "refer_audio_order_mask", "src_latents", "chunk_masks",
    "is_covers", "silence_latent", "attention_mask",
)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.float() - b.float()).abs().max().item()


def test_decoder_output(golden_model, golden_inputs, golden):
    i = golden_inputs
    with torch.no_grad():
        out = golden_model.decoder(i["hidden_states"], i["timestep"], i["timestep_r"], i["encoder_hidden_states"],
                                   i["context_latents"], i["attention_mask"], i["encoder_attention_mask"])
    assert max_diff(out, golden["out.decoder"]) <= ATOL


def test_condition_encoder_output_and_mask(golden_model, golden_inputs, golden):
    i = golden_inputs
    with torch.no_grad():
        states, mask = golden_model.encoder(i["text_hidden_states"], i["text_attention_mask"],
                                            i["lyric_hidden_states"], i["lyric_attention_mask"],
                                            i["refer_audio_acoustic_hidden_states_packed"],
                                            i["refer_audio_order_mask"])
    assert max_diff(states, golden["out.encoder_hidden_states"]) <= ATOL
    assert torch.equal(mask.long(), golden["out.encoder_attention_mask"])
    assert mask.sum(1).tolist() == [18, 12]


def test_prepare_condition_with_cover_hints(golden_model, golden_inputs, golden):
    cond = golden_model.prepare_condition(**{k: golden_inputs[k] for k in CONDITION_INPUTS})
    assert max_diff(cond.encoder_hidden_states, golden["out.prepare_condition.encoder_hidden_states"]) <= ATOL
    assert torch.equal(cond.encoder_attention_mask.long(), golden["out.prepare_condition.encoder_attention_mask"])
    assert max_diff(cond.context_latents, golden["out.prepare_condition.context_latents"]) <= ATOL
    # sample 1 is a cover: its source half must be the detokenized hints, not the raw src latents
    assert max_diff(cond.context_latents[1, :, :64], golden_inputs["src_latents"][1]) > 1e-2


def test_training_loss_with_injected_draws(golden_model, golden_inputs, golden):
    i = golden_inputs
    golden_model.train()
    cond = golden_model.prepare_condition(**{k: i[k] for k in CONDITION_INPUTS})
    draws = Draws(golden["rng.cfg_u"], golden["rng.noise"], golden["rng.n_t"], golden["rng.n_r"])
    out = flow_matching_loss(golden_model, i["hidden_states"], cond, draws, cfg_ratio=0.15,
                             attention_mask=i["attention_mask"])
    assert max_diff(out.t, golden["out.training.t"]) <= ATOL
    assert abs(out.loss.item() - golden["out.training.diffusion_loss"].item()) <= ATOL
    out.loss.backward()
    # prepare_condition runs without gradients: only the decoder and the null embedding learn
    assert golden_model.null_condition_emb.grad is not None
    assert golden_model.decoder.proj_in[1].weight.grad is not None
    assert all(p.grad is None for p in golden_model.encoder.parameters())


def test_audio_tokenizer_round_trip(golden_model, sampler_golden):
    s = sampler_golden
    with torch.no_grad():
        pre = golden_model.tokenizer.encode(s["in.src_latents"].reshape(2, 8, 5, 64))
        quantized, indices, pooled = golden_model.tokenize(s["in.src_latents"], s["in.silence_latent"],
                                                           s["in.attention_mask"])
        hints = golden_model.detokenize(quantized)
        from_codes = golden_model.tokenizer.quantizer.get_output_from_indices(indices)
        via_codes = golden_model.codes_to_hints(indices)
    assert max_diff(pre, s["tok.pre_quant"]) <= ATOL
    assert torch.equal(indices, s["tok.indices"])
    assert max_diff(quantized, s["tok.quantized"]) <= ATOL
    assert torch.equal(pooled, s["tok.pooled_attention_mask"].to(pooled.dtype))
    assert max_diff(hints, s["tok.detokenized"]) <= ATOL
    assert max_diff(from_codes, s["tok.quantized_from_indices"]) <= ATOL
    assert max_diff(via_codes, s["tok.detokenized"]) <= ATOL


def test_tokenize_pads_with_silence_frames(golden_model, sampler_golden):
    """T not a multiple of 5 is padded with the first silence frames, not zeros."""
    s = sampler_golden
    src = s["in.src_latents"][:, :37]
    silence = torch.randn(1, 10, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        q_model, _, pooled = golden_model.tokenize(src, silence, s["in.attention_mask"][:, :37])
        manual = torch.cat([src, silence[:, :3].expand(2, 3, 64)], dim=1).reshape(2, 8, 5, 64)
        q_manual, _ = golden_model.tokenizer(manual)
    assert torch.equal(q_model, q_manual)
    assert pooled.shape == (2, 8)
