"""A kill -9 while preprocessing leaves a cache the next run finishes into the same cache a clean run makes.
Kills are injected at named points by tests/crash_runner.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from acetune.audio import synthesize_song, write_audio
from acetune.cli.app import main
from acetune.data.cache import CacheReader
from crash_runner import run_killed


def cache_contents(folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    reader = CacheReader(folder)
    return {entry.id: reader.load(i) for i, entry in enumerate(reader.entries)}


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fault-songs")
    for seed in range(3):
        write_audio(root / f"s{seed}.wav", synthesize_song(seed=seed, duration_s=2.0, bpm=100, key="C major"), 48000)
    return root


@pytest.mark.parametrize("point", [("acetune.data.preprocess:encode_condition", "2"),
                                   ("acetune.data.cache:write_json_atomic", "1")],
                         ids=["between songs", "inside the index write"])
def test_a_killed_preprocess_run_is_finished_by_the_next(point, songs, tiny_bundle, tmp_path):
    args = ["preprocess", "--audio-dir", str(songs), "--checkpoint-dir", str(tiny_bundle)]
    assert main([*args, "--out", str(tmp_path / "clean")]) == 0
    run_killed(point, [*args, "--out", str(tmp_path / "cache")])
    assert main([*args, "--out", str(tmp_path / "cache")]) == 0
    clean, resumed = cache_contents(tmp_path / "clean"), cache_contents(tmp_path / "cache")
    assert clean.keys() == resumed.keys()
    assert all(torch.equal(clean[k][name], resumed[k][name]) for k in clean for name in clean[k])
    assert not list((tmp_path / "cache").glob(".*.tmp-*"))
