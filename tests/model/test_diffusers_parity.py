"""diffusers' ACE-Step 1.5 modules as a second, independent oracle for our model.

Our weights go into diffusers' `AceStepTransformer1DModel`, `AceStepConditionEncoder` and audio
tokenizer / detokenizer under diffusers' names (acetune.model.diffusers_keys). Measured on one CPU
in fp32 (torch 2.13, diffusers 0.42.1): every output is bit-identical to ours (max |Δ| 0, FSQ codes
equal), so `torch.equal` is asserted, no tolerance needed. Against the official goldens both sit
9.3e-6 (decoder), 9.5e-7 (encoder), 1.5e-6 (detokenizer) away: the kernel-path drift that
golden_tolerances.py documents, held to FORWARD_ATOL like ours.
Where diffusers disagrees with the official model: XL's timbre encoder. The official XL code
prepends the learned `special_token` (spec model.md §9); diffusers 0.42.1 never does, so its XL
timbre embeddings differ by O(1) (4.7 on tiny-xl). The test below pins that difference.
"""

from __future__ import annotations

import copy

import pytest
import torch

from golden_tolerances import FORWARD_ATOL

from acetune.model import AceStepModel, build_tiny_model
from acetune.model.diffusers_config import CLASSES, component_configs
from acetune.model.diffusers_keys import SILENCE_COMPONENT, SILENCE_LATENT, key_to_diffusers

ENCODER_INPUTS = ("text_hidden_states", "text_attention_mask", "lyric_hidden_states", "lyric_attention_mask",
                  "refer_audio_acoustic_hidden_states_packed", "refer_audio_order_mask")


def as_diffusers(model: AceStepModel) -> dict[str, torch.nn.Module]:
    """diffusers' four components holding `model`'s weights (strict loads), in eval mode."""
    import diffusers
    from diffusers.pipelines.ace_step import modeling_ace_step

    state: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in model.state_dict().items():
        component, name = key_to_diffusers(key)
        state.setdefault(component, {})[name] = value
    state[SILENCE_COMPONENT][SILENCE_LATENT] = torch.zeros(1, 15000, model.config.timbre_hidden_dim)
    modules = {}
    for component, values in component_configs(model.config, diffusers.__version__).items():
        cls = getattr(diffusers, CLASSES[component], None) or getattr(modeling_ace_step, CLASSES[component])
        module = cls(**{k: v for k, v in values.items() if not k.startswith("_")})
        module.load_state_dict(state[component], strict=True)
        modules[component] = module.eval()
    return modules


@pytest.fixture(scope="module")
def theirs(golden_model_weights, golden_config):
    model = AceStepModel(golden_config)
    model.load_state_dict(golden_model_weights)
    return as_diffusers(model)


@pytest.fixture(scope="module")
def golden_model_weights(golden):
    return {k[2:]: v for k, v in golden.items() if k.startswith("w.")}


def test_transformer_is_our_decoder_bit_for_bit(theirs, golden_model, golden_inputs, golden):
    i = golden_inputs
    args = (i["hidden_states"], i["timestep"], i["timestep_r"], i["encoder_hidden_states"], i["context_latents"])
    with torch.no_grad():
        ours = golden_model.decoder(*args)
        out = theirs["transformer"](*args).sample
        odd = theirs["transformer"](*(a[:, :37] if a.dim() == 3 and a.shape[1] == 40 else a for a in args)).sample
        ours_odd = golden_model.decoder(*(a[:, :37] if a.dim() == 3 and a.shape[1] == 40 else a for a in args))
    assert torch.equal(out, ours) and torch.equal(odd, ours_odd)  # T = 37 pads to the patch size and crops back
    assert (out - golden["out.decoder"]).abs().max() <= FORWARD_ATOL


def test_condition_encoder_is_ours_bit_for_bit(theirs, golden_model, golden_inputs, golden):
    args = [golden_inputs[k] for k in ENCODER_INPUTS]
    with torch.no_grad():
        states, mask = theirs["condition_encoder"](*args)
        ours, our_mask = golden_model.encoder(*args)
    assert torch.equal(states, ours) and torch.equal(mask, our_mask)
    assert (states - golden["out.encoder_hidden_states"]).abs().max() <= FORWARD_ATOL
    assert torch.equal(mask.long(), golden["out.encoder_attention_mask"])


def test_audio_tokenizer_and_detokenizer_are_ours(theirs, golden_model, sampler_golden):
    s = sampler_golden
    latents = s["in.src_latents"][:, :37]  # T = 37 pads to a multiple of 5 with the silence latent's first frames
    silence = torch.randn(1, 12, 64, generator=torch.Generator().manual_seed(0))  # [1, Ts, C] time-major in both
    with torch.no_grad():
        quantized, indices = theirs["audio_tokenizer"].tokenize(latents, silence)
        ours, our_indices, _ = golden_model.tokenize(latents, silence, torch.ones(2, 37))
        assert torch.equal(quantized, ours) and torch.equal(indices, our_indices)
        assert torch.equal(theirs["audio_token_detokenizer"](quantized), golden_model.detokenize(ours))
        quantized, indices = theirs["audio_tokenizer"].tokenize(s["in.src_latents"])
        hints = theirs["audio_token_detokenizer"](quantized)
        from_codes = theirs["audio_tokenizer"].quantizer.get_output_from_indices(indices)
    assert torch.equal(indices, s["tok.indices"])
    assert (quantized - s["tok.quantized"]).abs().max() <= FORWARD_ATOL
    assert (hints - s["tok.detokenized"]).abs().max() <= FORWARD_ATOL
    assert torch.equal(from_codes, s["tok.quantized_from_indices"])


def test_xl_decoder_agrees_and_xl_timbre_encoder_does_not():
    model = build_tiny_model("tiny-xl").eval()
    modules = as_diffusers(model)
    config = model.config
    g = torch.Generator().manual_seed(0)
    x, ctx = torch.randn(2, 24, 64, generator=g), torch.randn(2, 24, 128, generator=g)
    states = torch.randn(2, 7, config.condition_hidden_size, generator=g)
    t, r = torch.tensor([0.3, 0.8]), torch.tensor([0.1, 0.5])
    clips, order = torch.randn(3, 10, config.timbre_hidden_dim, generator=g), torch.tensor([0, 0, 1])
    with torch.no_grad():
        assert torch.equal(modules["transformer"](x, t, r, states, ctx).sample, model.decoder(x, t, r, states, ctx))
        ours, _ = model.encoder.timbre_encoder(clips, order, 2)
        theirs_, _ = modules["condition_encoder"].timbre_encoder(clips, order)
        without_token = copy.deepcopy(model.encoder.timbre_encoder)
        without_token.prepend_special_token = False
        plain, _ = without_token(clips, order, 2)
    assert (ours - theirs_).abs().max() > 1.0  # official XL prepends special_token; diffusers 0.42.1 does not
    assert torch.equal(plain, theirs_)  # ... and that is the whole difference
