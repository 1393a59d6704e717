"""A small preprocessed cache on the tiny bundle, shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from acetune.audio import synthesize_song, write_audio
from acetune.data.dataset import scan_dataset
from acetune.data.preprocess import preprocess


@pytest.fixture(scope="session")
def train_cache(tiny_bundle, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train-data")
    songs = root / "songs"
    for seed, (bpm, key) in enumerate([(120, "C major"), (90, "A minor"), (140, "E minor")]):
        write_audio(songs / f"song{seed}.wav", synthesize_song(seed=seed, duration_s=4.0, bpm=bpm, key=key), 48000)
        (songs / f"song{seed}.json").write_text(f'{{"caption": "test song {seed}", "bpm": {bpm}}}')
    out = root / "cache"
    events = list(preprocess(scan_dataset(songs).dataset, tiny_bundle, out))
    assert events[-1].summary["cached"] == 3
    return out
