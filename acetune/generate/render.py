"""Text to audio in three steps that share nothing but tensors: condition, sample, decode.

Each track is conditioned alone, through the same functions preprocessing used to make the
training conditions (`encode_condition` with the silence timbre reference), so a track's audio
depends only on its own prompt, length and seed, never on what else is in the batch. Several
seeds of one track run as one batch; every seed has its own noise generator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from acetune.config.schema import TimbreReference
from acetune.data.encoding import encode_condition, sample_generator, text2music_context, timbre_reference
from acetune.generate.tracks import Track
from acetune.model.acestep import AceStepModel, Condition
from acetune.model.sampling import SamplerSettings, initial_noise, sample
from acetune.model.text_encoder import TextEncoder
from acetune.model.vae import decode_latents, peak_normalize


def encode_track(model: AceStepModel, text_encoder: TextEncoder, track: Track,
                 silence_latent: torch.Tensor) -> torch.Tensor:
    """Caption + lyrics -> packed condition-encoder states [L, D] (float32, CPU)."""
    text = text_encoder.encode_caption(track.prompt)
    lyrics = text_encoder.embed_lyrics(track.lyric_text)
    return encode_condition(model, text, lyrics, timbre_reference(TimbreReference.SILENCE, silence_latent))


@torch.no_grad()
def render_latents(model: AceStepModel, states: torch.Tensor, frames: int, seeds: Sequence[int],
                   settings: SamplerSettings, silence_latent: torch.Tensor, *,
                   on_step: Callable[[int, int], None] | None = None,
                   context: torch.Tensor | None = None) -> torch.Tensor:
    """Sample clean latents [len(seeds), frames, C] (float32, CPU) for one condition.

    `context` [frames, 2C]: an edit task's context latents (`sources.source_context`); default text2music.
    """
    weight = model.null_condition_emb
    device, dtype = weight.device, weight.dtype
    batch = len(seeds)
    context = text2music_context(silence_latent, frames) if context is None else context
    condition = Condition(
        encoder_hidden_states=states[None].expand(batch, -1, -1).to(device, dtype),
        encoder_attention_mask=torch.ones(batch, states.shape[0], dtype=torch.bool, device=device),
        context_latents=context[None].expand(batch, -1, -1).to(device, dtype),
    )
    noise = initial_noise(batch, frames, silence_latent.shape[-1], list(seeds))
    # SDE steps draw fresh noise from each take's own generator: a take never depends on its batch
    generators = [sample_generator(int(seed), "sde") for seed in seeds]
    was_training = model.training
    model.eval()
    try:
        return sample(model, noise, condition, settings, generator=generators, on_step=on_step).float().cpu()
    finally:
        model.train(was_training)


def decode_audio(vae, latents: torch.Tensor, samples: int) -> torch.Tensor:
    """Latents [B, T, C] -> stereo waveforms [B, 2, samples] (float32, CPU), anti-clipped like the app."""
    waveform = decode_latents(vae, latents)[..., :samples]
    return peak_normalize(waveform)
