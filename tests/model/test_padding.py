"""Official mask-ignoring behaviour, and the mask-honouring mode: a padded batch equals each sample alone."""

from __future__ import annotations

import torch

from acetune.model import AttentionOptions, build_tiny_model


def sample(frames: int, cond_len: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "x": torch.randn(1, frames, 64, generator=g),
        "ctx": torch.randn(1, frames, 128, generator=g),
        "enc": torch.randn(1, cond_len, 64, generator=g),
    }


def pad_to(t: torch.Tensor, length: int) -> torch.Tensor:
    """Pad along dim 1 with large garbage, so any leak through the mask shows."""
    extra = length - t.shape[1]
    return torch.cat([t, torch.full((1, extra, t.shape[2]), 7.5)], dim=1)


def run(model, x, ctx, enc, frame_mask=None, enc_mask=None, t=0.6):
    batch = x.shape[0]
    times = torch.full((batch,), t)
    with torch.no_grad():
        return model.decoder(x, times, times, enc, ctx, frame_mask, enc_mask)


def test_padded_batch_equals_each_sample_alone_when_honouring_masks():
    model = build_tiny_model("tiny", seed=1, options=AttentionOptions(honor_padding=True)).eval()
    # odd and even lengths, long enough that the sliding window (4 patches) matters
    samples = [sample(37, 9, 0), sample(22, 5, 1), sample(30, 11, 2)]
    frames = max(s["x"].shape[1] for s in samples)
    cond = max(s["enc"].shape[1] for s in samples)
    x = torch.cat([pad_to(s["x"], frames) for s in samples])
    ctx = torch.cat([pad_to(s["ctx"], frames) for s in samples])
    enc = torch.cat([pad_to(s["enc"], cond) for s in samples])
    frame_mask = torch.stack([torch.arange(frames) < s["x"].shape[1] for s in samples]).long()
    enc_mask = torch.stack([torch.arange(cond) < s["enc"].shape[1] for s in samples]).long()
    batched = run(model, x, ctx, enc, frame_mask, enc_mask)
    for index, s in enumerate(samples):
        alone = run(model, s["x"], s["ctx"], s["enc"])
        n = s["x"].shape[1]
        assert (batched[index, :n] - alone[0]).abs().max().item() <= 1e-5


def test_official_mode_ignores_both_masks():
    model = build_tiny_model("tiny", seed=1).eval()
    s = sample(30, 9, 0)
    frame_mask = (torch.arange(30) < 20).long()[None]
    enc_mask = (torch.arange(9) < 4).long()[None]
    with_masks = run(model, s["x"], s["ctx"], s["enc"], frame_mask, enc_mask)
    without = run(model, s["x"], s["ctx"], s["enc"])
    assert torch.equal(with_masks, without)
    honouring = build_tiny_model("tiny", seed=1, options=AttentionOptions(honor_padding=True)).eval()
    assert not torch.allclose(run(honouring, s["x"], s["ctx"], s["enc"], frame_mask, enc_mask)[:, :20],
                              without[:, :20], atol=1e-4)


def test_window_convention_changes_sliding_layers_only_by_one_position():
    eager = build_tiny_model("tiny", seed=1).eval()
    flash = build_tiny_model("tiny", seed=1, options=AttentionOptions(window_convention="flash")).eval()
    s = sample(40, 6, 3)
    a, b = run(eager, s["x"], s["ctx"], s["enc"]), run(flash, s["x"], s["ctx"], s["enc"])
    assert a.shape == b.shape and not torch.allclose(a, b, atol=1e-5)
    short = sample(8, 6, 4)  # 4 patches <= window: flash applies no window, eager's covers all -> equal
    assert torch.allclose(run(eager, short["x"], short["ctx"], short["enc"]),
                          run(flash, short["x"], short["ctx"], short["enc"]), atol=1e-6)
