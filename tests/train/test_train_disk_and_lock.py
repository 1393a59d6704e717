"""Training on a full disk, into an unwritable folder, or into a run folder another run holds; and the exit codes
of a run that stopped on request or halted on non-finite losses."""

from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path

import pytest
from safetensors import SafetensorError

import acetune.atomic
import acetune.train.checkpoint
import acetune.train.loop
from acetune.cli import exit_codes
from acetune.cli.app import main
from acetune.errors import ConfigError, FolderLockedError
from acetune.events import Finished, Warned
from acetune.locks import LOCK_FILE, hold_folder
from acetune.train.checkpoint import list_checkpoints, read_checkpoint

DISK_FULL = "Error while serializing: I/O error: No space left on device (os error 28)"  # safetensors' own text


def train_args(cache: Path, bundle: Path, out: Path, *extra: str) -> list[str]:
    """3 steps (3 songs, batch 1), a checkpoint after each."""
    return ["train", "--cache", str(cache), "--checkpoint-dir", str(bundle), "--out", str(out), "--preset",
            "quick_test", "--epochs", "1", "--crop-seconds", "1.92", "--rank", "4", "--save-every", "1",
            "--grad-accum", "1", "--set", "log.tensorboard=false", "--set", "schedule.warmup_steps=0", *extra]


def hidden(folder: Path) -> list[str]:
    """Temporary files and folders a writer left (everything we write in place has a visible name)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*"))


def test_a_full_disk_at_a_checkpoint_keeps_the_last_one_and_the_run_resumes(train_cache, tiny_bundle, tmp_path,
                                                                            monkeypatch, capsys):
    out = tmp_path / "run"
    real_save = acetune.train.checkpoint.save_file
    calls = []

    def full_on_the_second(tensors, path, metadata=None):
        calls.append(path)
        if len(calls) == 2:
            raise SafetensorError(DISK_FULL)
        return real_save(tensors, path, metadata=metadata)

    monkeypatch.setattr(acetune.train.checkpoint, "save_file", full_on_the_second)
    assert main(train_args(train_cache, tiny_bundle, out)) == exit_codes.USER_ERROR
    err = capsys.readouterr().err
    assert f"error: no space left on {out / 'checkpoints'} while writing step_0000002" in err, err
    assert "fix: make more than " in err and "what was saved before is intact" in err
    assert [step for step, _ in list_checkpoints(out)] == [1] and read_checkpoint(out / "checkpoints/step_0000001")
    assert hidden(out) == [] and not (out / LOCK_FILE).exists()
    monkeypatch.undo()
    assert main(train_args(train_cache, tiny_bundle, out, "--resume-from", "latest")) == exit_codes.OK
    assert "resumed from" in capsys.readouterr().out and (out / "final" / "adapter_model.safetensors").is_file()


def test_a_full_disk_at_the_final_adapter_keeps_the_previous_one(train_cache, tiny_bundle, tmp_path, monkeypatch,
                                                                 capsys):
    out = tmp_path / "run"
    assert main(train_args(train_cache, tiny_bundle, out)) == exit_codes.OK
    final_before = (out / "final" / "adapter_model.safetensors").read_bytes()
    real_seal = acetune.atomic._seal

    def full_at_final(folder):
        if folder.name.startswith(".final.tmp-"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # fsync found the disk full
        real_seal(folder)

    monkeypatch.setattr(acetune.atomic, "_seal", full_at_final)
    resume = train_args(train_cache, tiny_bundle, out, "--resume-from", "latest", "--epochs", "2")
    assert main(resume) == exit_codes.USER_ERROR
    assert f"error: no space left on {out} while writing final (" in capsys.readouterr().err
    assert (out / "final" / "adapter_model.safetensors").read_bytes() == final_before
    assert hidden(out) == [] and not (out / LOCK_FILE).exists()


def test_an_unwritable_run_folder_is_refused_before_anything_loads(train_cache, tiny_bundle, tmp_path, monkeypatch,
                                                                   capsys):
    monkeypatch.setattr(acetune.train.loop, "build_session", lambda *a, **k: pytest.fail("setup ran"))
    monkeypatch.setattr(os, "access", lambda path, mode, **kwargs: os.fspath(path) != os.fspath(tmp_path))
    assert main(train_args(train_cache, tiny_bundle, tmp_path / "run")) == exit_codes.USER_ERROR
    assert f"error: no permission to write into {tmp_path}" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_second_run_on_a_held_folder_is_refused_naming_the_holder(train_cache, tiny_bundle, tmp_path, monkeypatch,
                                                                    capsys):
    out = tmp_path / "run"
    monkeypatch.setattr(acetune.train.loop, "build_session", lambda *a, **k: pytest.fail("setup ran"))
    with hold_folder(out, "acetune train"):
        assert main(train_args(train_cache, tiny_bundle, out)) == exit_codes.USER_ERROR
        err = capsys.readouterr().err
        assert f"another acetune process is writing into this folder: pid {os.getpid()} on " in err
        assert "(acetune train, since " in err and f"kill {os.getpid()}" in err
        assert os.listdir(out) == [LOCK_FILE]  # the refused run wrote nothing


def test_the_run_holds_its_lock_until_it_ends_or_is_closed_and_takes_over_a_stale_one(train_cache, tiny_bundle,
                                                                                     tmp_path):
    from acetune.config import resolve_config

    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_FILE).write_text(json.dumps({"pid": 999999, "host": "gone", "command": "acetune train"}))
    config = resolve_config(preset="quick_test", overrides=[
        f'data.cache="{train_cache}"', f'data.checkpoint_dir="{tiny_bundle}"', f'save.output_dir="{out}"',
        "data.crop_frames=48", "loop.epochs=1", "adapter.rank=4", "log.tensorboard=false"])
    events = acetune.train.loop.run(config)
    first = next(events)
    with pytest.raises(FolderLockedError):  # held while the generator runs
        with hold_folder(out, "acetune train"):
            pass
    rest = list(events)
    warned = [e for e in [first, *rest] if isinstance(e, Warned) and e.code == "stale-lock"]
    assert len(warned) == 1 and "pid 999999 on gone (acetune train)" in warned[0].text
    assert isinstance(rest[-1], Finished) and not (out / LOCK_FILE).exists()
    events = acetune.train.loop.run(_resumed(config))  # the same run again, resumed
    next(events)
    events.close()  # a front end that stops reading
    assert not (out / LOCK_FILE).exists()
    with pytest.raises(ConfigError, match="longer than every song"):  # a failed setup releases it too
        list(acetune.train.loop.run(_resumed(config, crop_frames=5000)))
    assert not (out / LOCK_FILE).exists()


def _resumed(config, **data):
    from dataclasses import replace

    return replace(config, save=replace(config.save, resume_from="latest"), data=replace(config.data, **data))


def test_a_stopped_run_exits_4_and_resumes(train_cache, tiny_bundle, tmp_path, monkeypatch, capsys):
    """The first Ctrl-C (a real SIGINT to this process) stops at the step boundary with a checkpoint."""
    import acetune.train.trainer

    real_agree = acetune.train.trainer.agree
    sent = []

    def interrupted(control, strategy):
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)
        real_agree(control, strategy)

    monkeypatch.setattr(acetune.train.trainer, "agree", interrupted)
    out = tmp_path / "run"
    assert main(train_args(train_cache, tiny_bundle, out)) == exit_codes.STOPPED == 4
    assert "finished (stopped) at step 1" in capsys.readouterr().out
    monkeypatch.undo()
    assert main(train_args(train_cache, tiny_bundle, out, "--resume-from", "latest")) == exit_codes.OK


def test_a_halted_run_exits_5(train_cache, tiny_bundle, tmp_path, monkeypatch, capsys):
    from acetune.train.trainer import Trainer

    monkeypatch.setattr(Trainer, "_micro_step", lambda *args, **kwargs: float("nan"))
    assert main(train_args(train_cache, tiny_bundle, tmp_path / "run")) == exit_codes.HALTED == 5
    assert "finished (halted)" in capsys.readouterr().out


def test_a_full_disk_under_the_event_log_is_a_named_error(tmp_path):
    from acetune.errors import DiskWriteError
    from acetune.events import StepDone
    from acetune.train.sinks import JsonlSink

    class FullDisk:
        """The log file once the disk is full: every flush (and the close that flushes) fails with ENOSPC."""

        def __init__(self, handle):
            self.handle = handle

        def write(self, text: str) -> int:
            return len(text)

        def flush(self) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def close(self) -> None:
            self.handle.close()
            self.flush()

    sink = JsonlSink(tmp_path / "events.jsonl")
    sink._handle = FullDisk(sink._handle)
    with pytest.raises(DiskWriteError, match=f"no space left on {tmp_path} while writing events.jsonl"):
        sink(StepDone(1, 0, 1.5, 1e-4, 0.1, 2.0, 0.0))
    with pytest.raises(DiskWriteError):
        sink.close()
