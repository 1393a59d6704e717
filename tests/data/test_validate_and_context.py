"""`validate_cache` problems and statistics, and the rebuilt text2music context latents."""

from __future__ import annotations

import torch

from acetune.data.cache import CacheEntry, CacheWriter
from acetune.data.encoding import silence_frames, text2music_context
from acetune.data.fingerprint import Fingerprint, write_fingerprint
from acetune.data.validate import padding_efficiency, validate_cache
from acetune.model import build_tiny_model


def make_cache(folder, lengths, *, poison: int | None = None, metadata: list[dict] | None = None):
    writer = CacheWriter(folder, [])
    for i, frames in enumerate(lengths):
        latents = torch.randn(frames, 8)
        if i == poison:
            latents[3, 2] = float("nan")
        meta = metadata[i] if metadata else {}
        writer.add(CacheEntry(f"s{i}.wav", "", f"h{i}", frames, 6, metadata=meta), {
            "target_latents": latents, "encoder_hidden_states": torch.randn(6, 16)})
    writer.close()
    write_fingerprint(folder, Fingerprint("turbo", "a" * 64, "b" * 64, "c" * 64, "d" * 64, {}))


def test_a_clean_cache_reports_lengths_and_padding(tmp_path):
    make_cache(tmp_path, [50, 100, 150, 200])
    report = validate_cache(tmp_path, batch_size=2)
    assert report.ok and report.samples == 4 and report.problems == []
    assert (report.latent.minimum, report.latent.mean, report.latent.maximum) == (50, 125.0, 200)
    assert report.padding_efficiency["latent, length buckets"] == 500 / (2 * 100 + 2 * 200)
    assert report.dtypes == {"target_latents": "float32", "encoder_hidden_states": "float32"}


def test_nan_and_length_mismatch_are_problems(tmp_path):
    make_cache(tmp_path, [40, 60], poison=1)
    report = validate_cache(tmp_path)
    assert not report.ok
    assert report.problems == ["s1.wav: target_latents holds NaN or Inf values"]


def test_songs_cached_without_a_caption_are_warnings(tmp_path):
    metadata = [{"caption": "zx, soft piano", "tag": "zx", "tag_position": "prepend"},
                {"caption": "zx", "tag": "zx", "tag_position": "prepend"},  # no caption: only the tag
                {"caption": "", "tag": "", "tag_position": "prepend"},
                {"caption": "zx", "tag": "zx", "tag_position": "replace"},  # captions dropped on purpose
                {}]  # a cache without caption metadata: not checked
    make_cache(tmp_path, [10] * 5, metadata=metadata)
    report = validate_cache(tmp_path)
    assert report.ok and report.problems == []
    assert report.warnings == ["s1.wav: no caption or genre: trained on the caption 'zx' and the metas alone",
                               "s2.wav: no caption or genre: trained on an empty caption and the metas alone"]


def test_padding_efficiency_prefers_buckets():
    lengths = [10, 1000, 20, 990, 30, 980, 40, 970]
    assert padding_efficiency(lengths, 2, bucketed=True) > padding_efficiency(lengths, 2, bucketed=False)
    assert padding_efficiency([5, 5, 5, 5], 4, bucketed=False) == 1.0


def test_text2music_context_equals_prepare_condition():
    model = build_tiny_model("tiny").eval()
    silence = torch.randn(1, 30, 64)
    frames = 40  # longer than the silence latent: it repeats from frame 0
    ctx = text2music_context(silence, frames)
    assert torch.equal(silence_frames(silence, frames)[30:], silence[0, :10])
    g = torch.Generator().manual_seed(0)
    cond = model.prepare_condition(
        text_hidden_states=torch.randn(1, 3, 32, generator=g), text_attention_mask=torch.ones(1, 3),
        lyric_hidden_states=torch.randn(1, 4, 32, generator=g), lyric_attention_mask=torch.ones(1, 4),
        refer_audio_acoustic_hidden_states_packed=torch.zeros(1, 1, 64), refer_audio_order_mask=torch.tensor([0]),
        src_latents=silence_frames(silence, frames)[None], chunk_masks=torch.ones(1, frames, 64),
        is_covers=torch.tensor([0]), silence_latent=silence, attention_mask=torch.ones(1, frames))
    assert torch.equal(cond.context_latents[0], ctx)
