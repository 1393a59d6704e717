"""Fixtures for auto-labelling: a tiny bundle with a tiny 5 Hz LM, an opened LM labeller, short songs,
and a logits processor that makes the LM write a scripted answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from acetune.audio import synthesize_song, write_audio


@pytest.fixture(scope="session")
def lm_bundle(tmp_path_factory) -> Path:
    """A complete tiny checkpoints/ folder with acestep-5Hz-lm-tiny/ (tests must not modify it)."""
    from acetune.model.tiny_bundle import write_tiny_bundle

    return write_tiny_bundle(tmp_path_factory.mktemp("label-bundle") / "checkpoints", lm=True)


@pytest.fixture(scope="session")
def lm_labeller(lm_bundle):
    """The LM labeller on the tiny bundle, loaded once (tests set `logits_processors` and must restore it)."""
    from acetune.label import LabelOptions, LmSettings, open_labellers

    [labeller] = open_labellers(lm_bundle, LabelOptions(device="cpu", lm_settings=LmSettings(max_new_tokens=200)))
    return labeller


@pytest.fixture()
def scripted(lm_labeller):
    """script(text) -> the LM now answers exactly `text` (then ends its turn) for every song."""

    def install(text: str) -> None:
        lm_labeller.logits_processors = [Script(lm_labeller.tokenizer, text)]

    yield install
    lm_labeller.logits_processors = []


class Script:
    """Forces the generated ids to be the tokens of `text` followed by <|im_end|>."""

    def __init__(self, tokenizer, text: str):
        self.ids = tokenizer(text, add_special_tokens=False).input_ids + [tokenizer.convert_tokens_to_ids("<|im_end|>")]
        self.turn_start = tokenizer.convert_tokens_to_ids("<|im_start|>")
        self.header = len(tokenizer("assistant\n", add_special_tokens=False).input_ids)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        row = input_ids[0].tolist()
        start = len(row) - row[::-1].index(self.turn_start) + self.header  # first generated position
        step = len(row) - start
        forced = torch.full_like(scores, -torch.inf)
        forced[:, self.ids[min(step, len(self.ids) - 1)]] = 0.0
        return forced


def write_songs(folder: Path, labels: dict[str, dict]) -> dict[str, Path]:
    """Short synthesized songs (1.5 s) named by `labels`' keys, each with a song.json of its labels (if any)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for seed, (name, sidecar) in enumerate(labels.items()):
        path = folder / name
        write_audio(path, synthesize_song(seed=seed, duration_s=1.5, bpm=120, key="C major"), 48000)
        if sidecar:
            path.with_suffix(".json").write_text(json.dumps(sidecar))
        paths[name] = path
    return paths


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory) -> Path:
    from tests.label.tiny_whisper import write_tiny_whisper

    return write_tiny_whisper(tmp_path_factory.mktemp("whisper") / "whisper-tiny")
