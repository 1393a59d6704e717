"""The model work of preprocessing, split into the two passes of the low-memory mode.

Pass 1 (VAE + text encoder): audio -> target latents, caption prompt -> text hidden states,
lyric text -> token embeddings. Pass 2 (the DiT's condition encoder): those features ->
packed `encoder_hidden_states`. One-pass preprocessing runs both on each sample, so both
modes compute exactly the same tensors.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from acetune.audio import SAMPLES_PER_LATENT_FRAME, TARGET_SAMPLE_RATE, is_silent
from acetune.config.schema import TimbreReference
from acetune.errors import AudioError
from acetune.model.acestep import AceStepModel
from acetune.model.text_encoder import TextEncoder
from acetune.model.vae import encode_latents

TIMBRE_FRAMES = 750  # 30 s of silence latent: the reference the app uses when none is given
# The shortest song preprocessing encodes. Measured on the tiny bundle's VAE (the official strides 2*4*4*6*10
# and kernel sizes; only the widths are smaller): 1919 samples at 48 kHz fail in the last downsampling conv
# (kernel 20 > 19 padded positions), 1920 samples (40 ms) give 1 latent frame. The DiT patchifies 2 frames
# (80 ms) and the FSQ tokenizer pools windows of 5 (200 ms); anything shorter is mostly padding. 1 s is 25
# frames = 5 whole pool windows, 25x the encoder's floor, and still far below any real song.
MIN_DURATION_S = 1.0
MIN_SAMPLES = int(MIN_DURATION_S * TARGET_SAMPLE_RATE)


def check_encodable(waveform, path: Path) -> None:
    """Refuse, before the VAE sees it, audio too short to encode and train on (see MIN_DURATION_S)."""
    samples = waveform.shape[-1]
    if samples < MIN_SAMPLES:
        raise AudioError(f"too short: {samples / TARGET_SAMPLE_RATE:.3f} s ({samples} samples at 48 kHz); "
                         f"songs must be at least {MIN_DURATION_S:g} s", path=path,
                         fix="remove the file or replace it with a complete copy")


def sample_generator(seed: int, sample_id: str) -> torch.Generator:
    """A generator per sample derived from (seed, id): draws do not depend on order or batching."""
    digest = hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def silence_frames(silence_latent: torch.Tensor, frames: int) -> torch.Tensor:
    """The first `frames` silence frames [frames, C], repeating from index 0 if the latent is shorter."""
    source = silence_latent[0]
    if frames > source.shape[0]:
        source = source.repeat((frames + source.shape[0] - 1) // source.shape[0], 1)
    return source[:frames]


def text2music_context(silence_latent: torch.Tensor, frames: int) -> torch.Tensor:
    """Context latents [T, 2C] for text2music training: silence source latents + an all-ones chunk mask.

    The cache does not store these: they depend only on the silence latent (fingerprinted with
    the model) and the length, so rebuilding them at train time halves the disk a cache needs.
    """
    source = silence_frames(silence_latent, frames).float()
    return torch.cat([source, torch.ones_like(source)], dim=-1)


def task_source(song: torch.Tensor, silence_source: torch.Tensor, *, repaint: tuple[int, int] | None = None,
                cover: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(source latents [T, C], chunk mask [T, C]) of an edit task on `song` [T, C] (spec model.md §5.1).

    `silence_source` [T, C] is the text2music source at the same positions. Repaint: the song with
    the span [start, end) replaced by the silence source, the mask 1 inside the span and 0 elsewhere.
    Cover (and extract, complete): the song and a mask of ones; for a cover the model then replaces the
    source by its semantic hints (`is_covers`). Neither: the text2music source and a mask of ones.
    """
    mask = torch.ones_like(song)
    if repaint is None:
        return (song.clone() if cover else silence_source.clone()), mask
    start, end = repaint
    source = song.clone()
    source[start:end] = silence_source[start:end]
    mask.zero_()
    mask[start:end] = 1
    return source, mask


@dataclass(frozen=True)
class AudioTextFeatures:
    """Pass-1 output for one sample."""

    target_latents: torch.Tensor  # [T, C]
    text_hidden_states: torch.Tensor  # [Lt, text_dim]
    lyric_hidden_states: torch.Tensor  # [Ll, text_dim]
    silent: bool

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"target_latents": self.target_latents, "text_hidden_states": self.text_hidden_states,
                "lyric_hidden_states": self.lyric_hidden_states}


def encode_audio_and_text(
    waveform,  # np.ndarray [2, S] at 48 kHz
    prompt: str,
    lyric_text: str,
    *,
    vae,
    text_encoder: TextEncoder,
    silence_latent: torch.Tensor,  # [1, Ts, C]
    generator: torch.Generator,
    sample_latents: bool,
    chunk_s: float,
    overlap_s: float,
) -> AudioTextFeatures:
    silent = is_silent(waveform)
    if silent:  # the VAE is never asked to encode digital silence; the app uses the silence latent
        latents = silence_frames(silence_latent, waveform.shape[-1] // SAMPLES_PER_LATENT_FRAME).float()
    else:
        latents = encode_latents(vae, torch.from_numpy(waveform), generator=generator, sample=sample_latents,
                                 chunk_s=chunk_s, overlap_s=overlap_s).cpu()
    text = text_encoder.encode_caption(prompt).cpu()
    lyrics = text_encoder.embed_lyrics(lyric_text).cpu()
    return AudioTextFeatures(latents, text, lyrics, silent)


def timbre_reference(mode: TimbreReference | str, silence_latent: torch.Tensor) -> torch.Tensor:
    """[1, Tr, C]: 750 silence frames (what inference uses without a reference) or one zero frame
    (what the upstream LoRA preprocessing used)."""
    if mode == TimbreReference.SILENCE:
        return silence_frames(silence_latent, TIMBRE_FRAMES)[None].float()
    if mode == TimbreReference.ZERO_FRAME:
        return torch.zeros(1, 1, silence_latent.shape[-1])
    raise ValueError(f"timbre reference must be one of {', '.join(m.value for m in TimbreReference)}, got {mode!r}")


@torch.no_grad()
def encode_condition(model: AceStepModel, text: torch.Tensor, lyrics: torch.Tensor,
                     reference: torch.Tensor) -> torch.Tensor:
    """Pass 2: text [Lt, Dt] + lyrics [Ll, Dt] + timbre reference -> packed states [Ll + 1 + Lt, D].

    Every position is valid (each sample is encoded alone), so no mask needs storing.
    """
    weight = model.encoder.text_projector.weight
    device, dtype = weight.device, weight.dtype
    states, mask = model.encoder(
        text[None].to(device, dtype), torch.ones(1, text.shape[0], device=device),
        lyrics[None].to(device, dtype), torch.ones(1, lyrics.shape[0], device=device),
        reference.to(device, dtype), torch.zeros(1, dtype=torch.long, device=device),
    )
    assert bool(mask.all()), "a sample encoded alone has no padding"
    return states[0].float().cpu()
