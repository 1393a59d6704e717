"""`acetune train` in-process: resolved config, event log, TensorBoard, resume, and config errors."""

from __future__ import annotations

import json

from acetune.cli.app import main
from acetune.config import CONFIG_VERSION, config_from_dict
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


def _quick(train_cache, tiny_bundle, out) -> list[str]:
    return ["train", "--cache", str(train_cache), "--checkpoint-dir", str(tiny_bundle), "--out", str(out),
            "--preset", "quick_test", "--epochs", "2", "--crop-seconds", "1.92", "--rank", "4", "--save-every", "1"]


def test_first_class_flags_land_in_the_typed_config(train_cache, tiny_bundle, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_quick(train_cache, tiny_bundle, out) + ["--lr", "0.002", "--grad-accum", "1", "--seed", "7",
                                                         "--adapter-kind", "dora", "--alpha", "8"]) == 0
    resolved = config_from_dict(load_config_file(out / "config.resolved.toml"), source="resolved")
    assert (resolved.adapter.rank, resolved.adapter.alpha, resolved.adapter.kind.value) == (4, 8.0, "dora")
    assert (resolved.optim.lr, resolved.optim.grad_accum, resolved.loop.seed) == (0.002, 1, 7)
    assert resolved.data.crop_frames == 48 and resolved.loop.epochs == 2 and resolved.save.save_every == 1


def test_resume_starts_from_the_run_folders_own_config(train_cache, tiny_bundle, tmp_path, capsys):
    """The README's resume line: the run's own settings, without -c; only real changes are refused."""
    out = tmp_path / "run"
    assert main(_quick(train_cache, tiny_bundle, out) + ["--max-steps", "1"]) == 0
    capsys.readouterr()
    resume = ["train", "--out", str(out), "--cache", str(train_cache), "--checkpoint-dir", str(tiny_bundle),
              "--resume-from", "latest"]
    assert main(resume + ["--max-steps", "2"]) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "resuming with the run's own settings" in printed and "resumed from" in printed
    assert main(resume + ["--rank", "4"]) == 0  # repeating a setting is no change
    capsys.readouterr()
    assert main(resume + ["--rank", "8", "--lr", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "adapter.rank: 4 -> 8" in err and "optim.lr: 0.0003 -> 0.5" in err and "fix:" in err


def test_a_run_from_before_rope_dtype_resumes_with_the_fp32_rope_it_trained_with(train_cache, tiny_bundle, tmp_path,
                                                                                  capsys):
    """A run folder written by config version 1 (no loop.rope_dtype; acetune computed fp32 frequencies then)."""
    from safetensors import safe_open

    from acetune.config.files import dumps_toml

    out = tmp_path / "run"
    assert main(_quick(train_cache, tiny_bundle, out) + ["--max-steps", "1"]) == 0
    capsys.readouterr()
    resolved = load_config_file(out / "config.resolved.toml")
    states = list((out / "checkpoints").glob("*/state.json"))
    for data in [resolved] + [json.loads(path.read_text())["config"] for path in states]:
        assert data["loop"].pop("rope_dtype") == "model"
    (out / "config.resolved.toml").write_text(dumps_toml({**resolved, "config_version": 1}, skip_none=True))
    for path in states:
        state = json.loads(path.read_text())
        del state["config"]["loop"]["rope_dtype"]
        path.write_text(json.dumps({**state, "config": {**state["config"], "config_version": 1}}))

    resume = ["train", "--out", str(out), "--cache", str(train_cache), "--checkpoint-dir", str(tiny_bundle),
              "--resume-from", "latest"]
    assert main(resume + ["--set", "loop.rope_dtype=model"]) == 2  # what it trained with is part of the run
    err = capsys.readouterr().err
    assert 'loop.rope_dtype: "fp32" -> "model"' in err, err
    assert main(resume + ["--max-steps", "2"]) == 0, capsys.readouterr().err
    assert "resumed from" in capsys.readouterr().out
    now = config_from_dict(load_config_file(out / "config.resolved.toml"), source="resolved")
    assert now.loop.rope_dtype.value == "fp32" and now.config_version == CONFIG_VERSION  # migrated to the current
    with safe_open(str(out / "final" / "adapter_model.safetensors"), framework="pt") as handle:
        assert handle.metadata()["rope_dtype"] == "fp32"


def test_preset_auto_fits_crops_to_short_songs(train_cache, tiny_bundle, tmp_path, capsys):
    """On a CPU auto picks quick_test (30 s crops); the cache's 4 s songs make it train whole songs instead."""
    out = tmp_path / "run"
    args = ["train", "--cache", str(train_cache), "--checkpoint-dir", str(tiny_bundle), "--out", str(out),
            "--preset", "auto", "--max-steps", "1", "--device", "cpu"]
    assert main(args) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "preset auto -> quick_test" in printed and "training on whole songs" in printed
    resolved = config_from_dict(load_config_file(out / "config.resolved.toml"), source="resolved")
    assert resolved.data.crop_frames == 0 and resolved.adapter.rank == 16  # the rest is the preset's


def test_a_crop_longer_than_every_song_names_the_longest(train_cache, tiny_bundle, tmp_path, capsys):
    args = ["train", "--cache", str(train_cache), "--checkpoint-dir", str(tiny_bundle), "--out",
            str(tmp_path / "run"), "--crop-seconds", "30"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "song0.wav" in err or "song1.wav" in err or "song2.wav" in err
    assert "--crop-seconds 4 or less" in err


def test_a_tag_the_cache_was_not_made_with_is_refused(train_cache, tiny_bundle, tmp_path, capsys):
    args = ["train", "--cache", str(train_cache), "--checkpoint-dir", str(tiny_bundle), "--out",
            str(tmp_path / "run"), "--trigger", "mystyle", "--crop-seconds", "0"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "without an activation tag, not 'mystyle'" in err and "--tag 'mystyle'" in err
    assert not (tmp_path / "run").exists()


def test_events_are_logged_as_they_happen(tmp_path, monkeypatch):
    """A run that dies mid-way leaves its log up to that moment (it was drained only at the end before)."""
    from rich.console import Console

    import acetune.train.loop
    from acetune.cli.train_view import train_and_log
    from acetune.config import LogConfig, RunConfig, SaveConfig
    from acetune.events import StepDone, TrainStarted

    def dies_mid_run(config, control=None):
        yield TrainStarted({"total_steps": 9, "effective_batch": 1, "trainable_parameters": 1, "precision": "fp32",
                            "device": "cpu"}, None)
        yield StepDone(1, 0, 1.5, 1e-4, 0.1, 2.0, 0.0)
        raise RuntimeError("simulated crash at step 2")

    monkeypatch.setattr(acetune.train.loop, "run", dies_mid_run)
    config = RunConfig(save=SaveConfig(output_dir=str(tmp_path / "run")), log=LogConfig(tensorboard=False))
    try:
        train_and_log(config, Console(file=open(tmp_path / "screen.txt", "w")))
    except RuntimeError:
        pass
    logged = [json.loads(line)["event"] for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    assert logged == ["TrainStarted", "StepDone"]
    assert "step 1: loss 1.5000" in (tmp_path / "screen.txt").read_text()


def test_every_optimizer_step_is_reported_and_the_bar_ends_full(train_cache, tiny_bundle, tmp_path):
    """Steps between logged ones come as Progressed events, so a bar advances every step, and it ends at 100 %."""
    import io

    from rich.console import Console

    from acetune.cli.train_view import render
    from acetune.events import Progressed, StepDone
    from acetune.train.loop import run
    from test_training import make_config

    events = list(run(make_config(train_cache, tiny_bundle, tmp_path / "run", log=dict(log_every=5))))
    logged = [e.step for e in events if isinstance(e, StepDone)]
    between = [e.done for e in events if isinstance(e, Progressed)]
    assert logged == [1, 5, 10] and sorted(logged + between) == list(range(1, 13))
    screen = io.StringIO()
    render(iter(events), Console(file=screen, force_terminal=True, width=120, color_system=None))
    assert "12/12" in screen.getvalue() and "finished (complete) at step 12" in screen.getvalue()
