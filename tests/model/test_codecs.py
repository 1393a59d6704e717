"""VAE tiling and the text encoder on the tiny bundle (real diffusers / transformers loading code)."""

from __future__ import annotations

import shutil

import pytest
import torch

from acetune.errors import ModelLoadError
from acetune.model.bundle import resolve_bundle
from acetune.model.text_encoder import load_text_encoder, tokenizer_hash
from acetune.model.vae import encode_latents, encode_posterior, hop_length, load_vae


@pytest.fixture(scope="module")
def vae(tiny_bundle):
    return load_vae(tiny_bundle / "vae")


def test_vae_rate_is_25_frames_per_second(vae):
    assert hop_length(vae) == 1920
    mean, std = encode_posterior(vae, torch.randn(2, 48000 * 2))
    assert mean.shape == (8, 50) and std.shape == (8, 50) and (std > 0).all()


def test_tiled_encoding_matches_whole_file_encoding(vae):
    g = torch.Generator().manual_seed(0)
    audio = torch.randn(2, int(48000 * 5.3), generator=g) * 0.3
    whole_mean, whole_std = encode_posterior(vae, audio, chunk_s=60.0)
    tiled_mean, tiled_std = encode_posterior(vae, audio, chunk_s=2.5, overlap_s=0.5)
    assert tiled_mean.shape == whole_mean.shape == (8, int(48000 * 5.3) // 1920)
    # overlap-discard with 0.5 s of context on each side (the default is 2 s): float rounding level
    assert (tiled_mean - whole_mean).abs().max().item() <= 1e-5
    assert (tiled_std - whole_std).abs().max().item() <= 1e-5
    # without context the window edges differ: the overlap is what makes tiling exact
    edge_mean, _ = encode_posterior(vae, audio, chunk_s=1.0, overlap_s=0.0)
    assert (edge_mean - whole_mean).abs().max().item() > 1e-3


def test_posterior_sample_is_seeded_and_independent_of_tiling(vae):
    audio = torch.randn(2, 48000 * 4, generator=torch.Generator().manual_seed(1)) * 0.3
    a = encode_latents(vae, audio, generator=torch.Generator().manual_seed(5), chunk_s=60.0)
    b = encode_latents(vae, audio, generator=torch.Generator().manual_seed(5), chunk_s=2.5, overlap_s=0.5)
    c = encode_latents(vae, audio, generator=torch.Generator().manual_seed(6), chunk_s=60.0)
    mean = encode_latents(vae, audio, generator=None, sample=False)
    assert a.shape == (100, 8)
    assert (a - b).abs().max().item() <= 1e-5
    assert not torch.allclose(a, c) and not torch.allclose(a, mean)


def test_text_encoder_caption_and_lyrics(tiny_bundle):
    encoder = load_text_encoder(tiny_bundle / "Qwen3-Embedding-0.6B")
    caption = encoder.encode_caption("# Instruction\nFill the audio semantic mask\n<|endoftext|>\n")
    lyrics = encoder.embed_lyrics("# Languages\nen\n\n# Lyric\nla la la<|endoftext|>")
    assert caption.shape[1] == 32 and lyrics.shape[1] == 32
    ids = encoder.token_ids("la<|endoftext|>", 16).tolist()
    assert ids[-1] == encoder.tokenizer.convert_tokens_to_ids("<|endoftext|>")  # matched as the special token
    table = encoder.model.get_input_embeddings().weight
    assert torch.equal(lyrics[0], table[encoder.token_ids("# Languages", 4)[0]].float())
    assert len(tokenizer_hash(tiny_bundle / "Qwen3-Embedding-0.6B")) == 64


def test_bundle_resolution_and_missing_parts(tiny_bundle, tmp_path):
    bundle = resolve_bundle(tiny_bundle)
    assert bundle.dit.name == "acestep-v15-turbo" and bundle.vae.name == "vae"
    assert resolve_bundle(tiny_bundle / "acestep-v15-turbo") == bundle  # the DiT folder itself works too
    broken = tmp_path / "checkpoints"
    shutil.copytree(tiny_bundle, broken)
    shutil.rmtree(broken / "vae")
    with pytest.raises(ModelLoadError, match="the VAE is missing"):
        resolve_bundle(broken)
    with pytest.raises(ModelLoadError, match="model folders: acestep-v15-turbo"):
        resolve_bundle(broken, model="acestep-v15-base")
    songs = tmp_path / "songs"
    songs.mkdir()
    with pytest.raises(ModelLoadError, match="no ACE-Step model here") as err:
        resolve_bundle(songs)  # a wrong folder: no listed-folder hint that lists nothing
    assert str(songs) in str(err.value)
    with pytest.raises(ModelLoadError, match="has no config.json"):
        load_vae(tmp_path)
