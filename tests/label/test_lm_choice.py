"""Which LM variant loads: by name, or the largest whose memory estimate fits the device."""

from __future__ import annotations

import pytest
import torch

from acetune.errors import ModelLoadError
from acetune.label import lm_folders
from acetune.label.lm_folders import MEMORY_FACTOR, choose_lm

SIZES = {"0.6B": 1_200, "1.7B": 3_400, "4B": 8_000}  # bytes of "weights" (scaled down from GB)


@pytest.fixture()
def checkpoints(tmp_path):
    for name, size in SIZES.items():
        folder = tmp_path / f"acestep-5Hz-lm-{name}"
        folder.mkdir()
        (folder / "config.json").write_text("{}")
        with open(folder / "model.safetensors", "wb") as handle:
            handle.truncate(size)
    (tmp_path / "acestep-5Hz-lm-broken").mkdir()  # no config.json: not an LM folder
    return tmp_path


def _free(monkeypatch, free):
    monkeypatch.setattr(lm_folders, "free_memory", lambda device: free)


def test_largest_that_fits_in_float32(checkpoints, monkeypatch):
    need_17 = int(3_400 * 2 * MEMORY_FACTOR)  # float32 doubles the bf16 files
    _free(monkeypatch, need_17)
    choice = choose_lm(checkpoints, None, torch.device("cpu"), torch.float32)
    assert choice.name == "acestep-5Hz-lm-1.7B" and choice.need_bytes == need_17
    assert choice.reason == "the largest that fits"


def test_bf16_fits_a_larger_one(checkpoints, monkeypatch):
    _free(monkeypatch, int(8_000 * MEMORY_FACTOR))
    assert choose_lm(checkpoints, None, torch.device("cpu"), torch.bfloat16).name == "acestep-5Hz-lm-4B"


def test_none_fits_gives_the_smallest_and_says_so(checkpoints, monkeypatch):
    _free(monkeypatch, 10)
    choice = choose_lm(checkpoints, None, torch.device("cpu"), torch.float32)
    assert choice.name == "acestep-5Hz-lm-0.6B" and "none fits" in choice.reason


def test_variant_by_name(checkpoints, monkeypatch):
    _free(monkeypatch, 10)
    assert choose_lm(checkpoints, "4B", torch.device("cpu"), torch.float32).name == "acestep-5Hz-lm-4B"
    assert choose_lm(checkpoints, "acestep-5Hz-lm-1.7B", torch.device("cpu"), torch.float32).reason == "chosen by --lm"
    with pytest.raises(ModelLoadError, match="no LM folder '8B'") as info:
        choose_lm(checkpoints, "8B", torch.device("cpu"), torch.float32)
    assert "acestep-5Hz-lm-0.6B, acestep-5Hz-lm-1.7B, acestep-5Hz-lm-4B" in str(info.value)


def test_missing_checkpoint_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="checkpoint folder not found"):
        choose_lm(tmp_path / "nope", None, torch.device("cpu"), torch.float32)
