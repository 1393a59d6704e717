"""What commands print reaches the user intact: `[bnb]` in a hint, `[live]` in a file name, no colour codes
from LyCORIS in piped output."""

from __future__ import annotations

import sys

import pytest
import torch

from acetune.cli.app import main, print_error


def test_the_adamw8bit_hint_prints_with_its_extra_intact(monkeypatch, capsys):
    from acetune.config import OptimConfig, OptimizerKind
    from acetune.errors import ConfigError
    from acetune.train.optim import build_optimizer

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # not installed
    with pytest.raises(ConfigError) as caught:
        build_optimizer([{"params": [torch.nn.Parameter(torch.zeros(2))]}],
                        OptimConfig(optimizer=OptimizerKind.ADAMW8BIT), torch.device("cpu"))
    assert print_error(caught.value) == 2
    assert "fix: pip install 'acetune[bnb]' (CUDA only), or use optim.optimizer = adamw" in capsys.readouterr().err


def test_lycoris_writes_no_colour_codes_and_nothing_to_stdout(capfd, caplog):
    """LyCORIS warns (rank 4 is too large for width 64) through its own coloured stdout handler unless rerouted."""
    from acetune.adapters import attach
    from acetune.config import AdapterConfig, AdapterKind
    from acetune.model import build_tiny_model
    from lycoris.modules.lokr import logging_force_full_matrix

    logging_force_full_matrix.cache_clear()  # LyCORIS warns once per process: an earlier test may have had it
    attach(build_tiny_model("tiny", 0).decoder, AdapterConfig(kind=AdapterKind.LOKR, rank=4, alpha=8.0), seed=0)
    out, err = capfd.readouterr()
    assert out == "" and "\x1b" not in err
    # the warning itself goes through Python logging, like every library's (shown plainly on stderr by default)
    assert [r.getMessage() for r in caplog.records if r.name == "LyCORIS"] == [
        "lora_dim 4 is too large for dim=64 and factor=-1, using full matrix mode."]


def test_a_bracketed_model_folder_prints_as_it_is(tmp_path, capsys):
    from acetune.model import write_tiny_checkpoint

    folder = write_tiny_checkpoint(tmp_path / "[live] model")
    assert main(["model", "info", str(folder)]) == 0
    assert f"{tmp_path}/[live] model" in capsys.readouterr().out


def test_a_bracketed_song_in_a_cache_problem_prints_as_it_is(tmp_path, capsys):
    from acetune.data.cache import CacheEntry, CacheWriter
    from acetune.data.fingerprint import Fingerprint, write_fingerprint

    cache = tmp_path / "[v2] cache"
    writer = CacheWriter(cache, [])
    writer.add(CacheEntry("[live] a.wav", "", "h", 4, 3),
               {"target_latents": torch.full((4, 8), float("nan")), "encoder_hidden_states": torch.zeros(3, 8)})
    writer.close()
    write_fingerprint(cache, Fingerprint("turbo", "m", "v", "t", "k", {}))
    assert main(["dataset", "validate", str(cache)]) == 2
    out = capsys.readouterr().out
    assert f"{cache}: 1 samples" in out and "problem [live] a.wav: target_latents holds NaN or Inf values" in out
