"""A run abandoned right after any checkpoint (a kill) resumes to exactly the uninterrupted run: steps, evals,
best/ and final/; and a checkpoint refuses a cache whose songs changed instead of looping forever."""

from __future__ import annotations

import shutil

import pytest
import torch

from acetune.audio import synthesize_song, write_audio
from acetune.data.dataset import scan_dataset
from acetune.data.preprocess import preprocess
from acetune.errors import ResumeError
from acetune.events import EvalDone, Finished, Saved, StepDone
from acetune.train.loop import run
from test_training import adapter_tensors, make_config

CHANGES = dict(save=dict(save_every=3), loop=dict(epochs=4, best_after=0, min_delta=0.0))  # 3 steps per epoch


def _history(events) -> tuple[list, list]:
    steps = [(e.step, e.loss) for e in events if isinstance(e, StepDone)]
    evals = [(e.step, e.loss, e.best) for e in events if isinstance(e, EvalDone) and e.step]
    return steps, evals


def _abandon_after_checkpoint(config, count: int) -> list:
    """Iterate the run until its `count`-th checkpoint is on disk, then drop it as a kill -9 would."""
    events, saved = [], 0
    for event in run(config):
        events.append(event)
        if isinstance(event, Saved) and event.kind == "checkpoint":
            saved += 1
            if saved == count:
                break
    return events


def _same_tensors(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_kill_after_any_checkpoint_resumes_to_the_uninterrupted_run(train_cache, tiny_bundle, tmp_path):
    straight = list(run(make_config(train_cache, tiny_bundle, tmp_path / "straight", **CHANGES)))
    saves = [e.step for e in straight if isinstance(e, Saved) and e.kind == "checkpoint"]
    assert saves[:4] == [3, 6, 9, 12]  # each lands on an epoch's last step, before that epoch's eval
    for count in range(1, 5):
        out = tmp_path / f"killed-{count}"
        first = _abandon_after_checkpoint(make_config(train_cache, tiny_bundle, out, **CHANGES), count)
        resumed = list(run(make_config(train_cache, tiny_bundle, out, **{**CHANGES, "save": dict(
            save_every=3, resume_from="latest")})))
        assert isinstance(resumed[-1], Finished) and resumed[-1].reason == "complete"
        joined = [a + b for a, b in zip(_history(first), _history(resumed))]
        assert joined == list(_history(straight)), count
        for folder in ("best", "final"):
            assert _same_tensors(adapter_tensors(tmp_path / "straight" / folder), adapter_tensors(out / folder)), \
                (count, folder)


def test_a_changed_cache_is_refused_on_resume(train_cache, tiny_bundle, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(train_cache, cache)
    out = tmp_path / "run"
    _abandon_after_checkpoint(make_config(cache, tiny_bundle, out, **CHANGES), 1)
    songs = tmp_path / "songs"
    for seed in range(2):  # one song fewer than the cache was made from, and the same two
        write_audio(songs / f"song{seed}.wav", synthesize_song(seed=seed, duration_s=4.0, bpm=120, key="C major"), 48000)
    list(preprocess(scan_dataset(songs).dataset, tiny_bundle, cache, rebuild=True))
    with pytest.raises(ResumeError, match="the cache changed since this checkpoint: 1 removed") as caught:
        list(run(make_config(cache, tiny_bundle, out, **{**CHANGES, "save": dict(save_every=3,
                                                                                   resume_from="latest")})))
    assert "start a new run" in caught.value.fix
