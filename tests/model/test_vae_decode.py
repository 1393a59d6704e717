"""Tiled VAE decoding and the app's anti-clipping normalization, on a tiny random Oobleck VAE."""

from __future__ import annotations

import pytest
import torch

from acetune.errors import ConfigError
from acetune.model.tiny_bundle import TINY_LATENT_CHANNELS, write_tiny_vae
from acetune.model.vae import decode_latents, hop_length, load_vae, peak_normalize


@pytest.fixture(scope="module")
def tiny_vae(tmp_path_factory):
    return load_vae(write_tiny_vae(tmp_path_factory.mktemp("vae") / "vae"))


def latents(batch: int, frames: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, frames, TINY_LATENT_CHANNELS, generator=torch.Generator().manual_seed(seed))


def test_short_input_is_one_decoder_call(tiny_vae):
    z = latents(2, 12)
    audio = decode_latents(tiny_vae, z)
    expected = tiny_vae.decode(z.transpose(1, 2)).sample
    assert audio.dtype == torch.float32 and audio.device.type == "cpu"
    assert audio.shape == (2, 2, 12 * hop_length(tiny_vae))
    assert torch.equal(audio, expected)


def test_tiled_decode_matches_whole_decode(tiny_vae, monkeypatch):
    z = latents(2, 100, seed=1)
    whole = decode_latents(tiny_vae, z, chunk_frames=1000)
    calls: list[int] = []
    decode = tiny_vae.decode
    monkeypatch.setattr(tiny_vae, "decode", lambda x: calls.append(x.shape[-1]) or decode(x))
    tiled = decode_latents(tiny_vae, z, chunk_frames=40, overlap_frames=12)  # core 16 frames
    assert len(calls) == 7 and max(calls) <= 40
    assert tiled.shape == whole.shape == (2, 2, 100 * hop_length(tiny_vae))
    assert (tiled - whole).abs().max().item() <= 1e-5
    # each item of the batch decodes as it would alone
    single = decode_latents(tiny_vae, z[1:], chunk_frames=40, overlap_frames=12)
    assert (single[0] - tiled[1]).abs().max().item() <= 1e-5


def test_decode_rejects_bad_tiling_and_shapes(tiny_vae):
    with pytest.raises(ConfigError, match="overlap_frames"):
        decode_latents(tiny_vae, latents(1, 50), chunk_frames=20, overlap_frames=10)
    with pytest.raises(ConfigError, match=r"\[B, T, C\]"):
        decode_latents(tiny_vae, latents(1, 50)[0])


def test_peak_normalize_only_touches_clipping_items():
    loud = torch.tensor([[0.5, -2.0], [1.0, 0.25]])
    quiet = torch.tensor([[0.5, -0.9], [1.0, 0.25]])  # peak exactly 1: unchanged
    silent = torch.zeros(2, 2)
    out = peak_normalize(torch.stack([loud, quiet, silent]))
    assert torch.equal(out[0], loud / 2.0)
    assert out[0].abs().max().item() == 1.0
    assert torch.equal(out[1], quiet)
    assert torch.equal(out[2], silent)
    assert torch.equal(peak_normalize(loud), loud / 2.0)
