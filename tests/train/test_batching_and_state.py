"""Epoch plans (determinism, crops, coverage, buckets), collation, and the no-pickle state format."""

from __future__ import annotations

import json
import random

import numpy as np
import torch

from acetune.data.cache import CacheEntry, CacheReader, CacheWriter
from acetune.train.batching import Coverage, collate, plan_epoch, split_indices
from acetune.train.state import capture_rng, flatten, restore_rng, unflatten


def plan(epoch=0, coverage=None, lengths=(100, 40, 300, 64, 64, 500), **kwargs):
    args = dict(epoch=epoch, seed=7, batch_size=2, crop_frames=64, bucketing=True)
    args.update(kwargs)
    return plan_epoch(list(lengths), list(range(len(lengths))), coverage=coverage or Coverage(8), **args)


def test_plans_are_deterministic_and_crops_stay_inside():
    lengths = (100, 40, 300, 64, 64, 500)
    a, b = plan(), plan()
    assert a == b and plan(epoch=1) != a
    items = [item for batch in a for item in batch]
    assert sorted(i.index for i in items) == list(range(6))
    for item in items:
        assert item.frames == min(64, lengths[item.index])
        assert 0 <= item.start and item.start + item.frames <= lengths[item.index]


def test_buckets_hold_equal_lengths_so_no_frame_padding():
    batches = plan(lengths=(30, 200, 30, 200), crop_frames=0)
    assert all(len({item.frames for item in batch}) == 1 for batch in batches)


def test_coverage_spreads_crops_over_a_long_song():
    coverage = Coverage(8)
    starts = []
    for epoch in range(64):
        batches = plan_epoch([1000], [0], epoch=epoch, seed=1, batch_size=1, crop_frames=100, bucketing=False,
                             coverage=coverage)
        starts.append(batches[0][0].start)
    bins = np.histogram(starts, bins=8, range=(0, 901))[0]
    assert bins.min() >= 6  # every region visited about evenly (8 +- 2 of 64)
    assert Coverage.from_state(json.loads(json.dumps(coverage.state()))).hits == coverage.hits


def test_collate_crops_pads_and_masks(tmp_path):
    writer = CacheWriter(tmp_path, [])
    for i, (frames, cond) in enumerate([(50, 7), (30, 4)]):
        writer.add(CacheEntry(f"s{i}", "", "h", frames, cond), {
            "target_latents": torch.arange(frames * 8, dtype=torch.float32).reshape(frames, 8),
            "encoder_hidden_states": torch.ones(cond, 16)})
    writer.close()
    reader = CacheReader(tmp_path)
    silence = torch.randn(1, 100, 8)
    from acetune.train.batching import Item

    batch = collate(reader, [Item(0, 10, 20), Item(1, 0, 15)], silence)
    assert batch.target_latents.shape == (2, 20, 8) and batch.encoder_hidden_states.shape == (2, 7, 16)
    assert torch.equal(batch.target_latents[0, 0], torch.arange(80, 88, dtype=torch.float32))
    assert batch.frame_mask.tolist()[1] == [1] * 15 + [0] * 5
    assert batch.encoder_mask.tolist() == [[1] * 7, [1] * 4 + [0] * 3]
    assert torch.equal(batch.context_latents[0, :, :8], silence[0, 10:30])  # silence at the crop's position
    assert torch.equal(batch.context_latents[0, :, 8:], torch.ones(20, 8))
    assert batch.target_latents[1, 15:].abs().sum() == 0


def test_validation_split_is_seeded_and_disjoint(tmp_path):
    writer = CacheWriter(tmp_path, [])
    for i in range(10):
        writer.add(CacheEntry(f"s{i}", "", "h", 4, 2), {"target_latents": torch.zeros(4, 2),
                                                       "encoder_hidden_states": torch.zeros(2, 2)})
    writer.close()
    reader = CacheReader(tmp_path)
    train, held = split_indices(reader, 0.2, seed=3)
    assert len(held) == 2 and not set(train) & set(held) and split_indices(reader, 0.2, seed=3) == (train, held)
    assert split_indices(reader, 0.0, seed=3) == (list(range(10)), list(range(10)))


def test_state_round_trip_through_json_and_tensors():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    tensors: dict[str, torch.Tensor] = {}
    tree = json.loads(json.dumps(flatten({"opt": optimizer.state_dict(), "rng": capture_rng()}, tensors)))
    back = unflatten(tree, tensors)
    fresh = torch.optim.AdamW(model.parameters())
    fresh.load_state_dict(back["opt"])
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    expected = (random.random(), float(np.random.rand()), torch.rand(1).item())
    restore_rng(back["rng"])
    assert (random.random(), float(np.random.rand()), torch.rand(1).item()) == expected


def test_adaptive_timesteps_follow_the_loss():
    from acetune.train.adaptive import AdaptiveTimesteps

    sampler = AdaptiveTimesteps(ratio=1.0)
    sums, counts = sampler.bin_totals(torch.tensor([0.05, 0.95]), torch.tensor([0.0, 500.0]))
    for _ in range(50):
        sampler.update(sums, counts)
    assert sampler.ema[9] > 100 * sampler.ema[0] and sampler.ema[5] == 1.0  # unseen bins keep their value
    g = torch.Generator().manual_seed(0)
    t = sampler.apply(torch.full((2000,), 0.5), g)
    assert ((t >= 0.9) & (t < 1.0)).float().mean() > 0.5
    half = AdaptiveTimesteps(ratio=0.5).apply(torch.full((10,), 0.123), g)
    assert (half == 0.123).sum() == 5  # the other half keeps the pre-training draws
