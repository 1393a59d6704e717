"""`acetune train` in-process: resolved config, event log, TensorBoard, resume, and config errors."""

from __future__ import annotations

import json

from acetune.cli.app import main
from acetune.config import config_from_dict
from acetune.config.files import load_config_file


def test_train_cli_writes_config_logs_and_adapters(train_cache, tiny_bundle, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--cache", str(train_cache), "--checkpoint-dir", str(tiny_bundle), "--output-dir", str(out),
            "--preset", "quick_test", "--set", "loop.epochs=2", "--set", "data.crop_frames=48",
            "--set", "adapter.rank=4"]
    assert main(args) == 0, capsys.readouterr()
    printed = capsys.readouterr().out
    assert "plan: 2 steps" in printed and "finished (complete)" in printed
    resolved = config_from_dict(load_config_file(out / "config.resolved.toml"), source="resolved")
    assert resolved.adapter.rank == 4 and resolved.data.crop_frames == 48
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert events[0]["event"] == "TrainStarted" and events[-1]["event"] == "Finished"
    assert any(e["event"] == "StepDone" for e in events)
    assert list((out / "logs").glob("events.out.tfevents.*"))
    assert (out / "final" / "adapter_model.safetensors").is_file()
    # resuming the finished run continues from its last checkpoint and adds no steps
    assert main(args + ["--resume-from", "latest"]) == 0
    assert "resumed from" in capsys.readouterr().out


def test_train_cli_config_errors_exit_2(train_cache, tiny_bundle, tmp_path, capsys):
    code = main(["train", "--cache", str(train_cache), "--checkpoint-dir", str(tiny_bundle),
                 "--output-dir", str(tmp_path / "run"), "--set", "optim.lrr=1e-4"])
    err = capsys.readouterr().err
    assert code == 2 and "optim.lrr" in err and "optim.lr" in err
    assert not (tmp_path / "run").exists()  # nothing written for a refused config


def test_a_silent_data_parallel_rank_writes_no_logs(tmp_path, monkeypatch):
    """Ranks other than 0 yield no events (they train silently): the CLI must not expect one or log."""
    from rich.console import Console

    import acetune.train.loop
    from acetune.cli.train_view import train_and_log
    from acetune.config import RunConfig, SaveConfig

    monkeypatch.setattr(acetune.train.loop, "run", lambda config, control=None: iter(()))
    config = RunConfig(save=SaveConfig(output_dir=str(tmp_path / "run")))
    assert train_and_log(config, Console()) == []
    assert not (tmp_path / "run").exists()
