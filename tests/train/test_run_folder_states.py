"""Every state a run folder can be left in, against every command that touches it: each ends in success, or in
an error whose fix succeeds when followed. No state traps a run (issue: the two fixes pointed at each other)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from acetune.cli.app import main

STATES = ("missing", "empty", "config only", "config and a half-written checkpoint", "checkpoints", "finished",
          "best without a checkpoint")


@pytest.fixture(scope="module")
def finished_run(train_cache, tiny_bundle, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("template") / "run"
    assert main(_train(train_cache, tiny_bundle, out)) == 0
    return out


def _train(cache: Path, bundle: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--cache", str(cache), "--checkpoint-dir", str(bundle), "--out", str(out), "--crop-seconds", "0",
            "--epochs", "2", "--grad-accum", "1", "--rank", "4", "--save-every", "3", "--set", "log.tensorboard=false", *extra]


def make_state(state: str, template: Path, out: Path) -> Path:
    """A run folder as a kill or a finished run leaves it, made from a finished template run."""
    if state == "missing":
        return out
    out.mkdir(parents=True)
    if state == "empty":
        return out
    for name in ("config.resolved.toml", "events.jsonl"):
        shutil.copy(template / name, out / name)
    if state == "config and a half-written checkpoint":
        staging = out / "checkpoints" / ".step_0000003.tmp-killed"
        staging.mkdir(parents=True)
        (staging / "adapter_model.safetensors").write_bytes(b"half")
    if state == "checkpoints":  # killed after its first checkpoint (step 3 of 6)
        shutil.copytree(template / "checkpoints" / "step_0000003", out / "checkpoints" / "step_0000003")
    if state == "finished":
        shutil.copytree(template / "checkpoints", out / "checkpoints")
        for name in ("best", "final"):
            shutil.copytree(template / name, out / name)
    if state == "best without a checkpoint":
        shutil.copytree(template / "best", out / "best")
    return out


def _run(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out + captured.err


@pytest.mark.parametrize("state", STATES)
def test_train_and_resume_in_every_state(state, finished_run, train_cache, tiny_bundle, tmp_path, capsys):
    for resume in ((), ("--resume-from", "latest")):
        out = make_state(state, finished_run, tmp_path / f"run{len(resume)}")
        code, text = _run(_train(train_cache, tiny_bundle, out, *resume), capsys)
        if state in ("checkpoints", "finished") and not resume:
            assert code == 2 and "holds a run with checkpoints up to step" in text and "--resume-from latest" in text
            code, text = _run(_train(train_cache, tiny_bundle, out, "--resume-from", "latest"), capsys)  # the fix
        if state == "best without a checkpoint":
            assert code == 2 and "move" in text and "best" in text
            shutil.move(str(out / "best"), str(tmp_path / f"kept{len(resume)}"))  # the fix
            code, text = _run(_train(train_cache, tiny_bundle, out, *resume), capsys)
        assert code == 0, (state, resume, text)
        assert (out / "final" / "adapter_model.safetensors").is_file()
        assert not list((out / "checkpoints").glob(".*.tmp-*"))
        if state in ("config only", "config and a half-written checkpoint") and not resume:
            assert "starts afresh" in text
        if resume and state in ("missing", "empty", "config only", "config and a half-written checkpoint"):
            assert "no complete checkpoint yet: starting from step 0" in text


def test_resume_from_a_folder_that_is_no_checkpoint_says_what_works(finished_run, train_cache, tiny_bundle,
                                                                     tmp_path, capsys):
    out = make_state("checkpoints", finished_run, tmp_path / "run")
    code, text = _run(_train(train_cache, tiny_bundle, out, "--resume-from", str(out / "final")), capsys)
    assert code == 2 and "not a complete checkpoint" in text and "--resume-from latest" in text
    code, text = _run(_train(train_cache, tiny_bundle, out, "--resume-from", "latest"), capsys)
    assert code == 0 and "resumed from" in text


@pytest.mark.parametrize("state", ["config only", "checkpoints"])
def test_adapter_commands_on_an_unfinished_run_name_what_exists(state, finished_run, tiny_bundle, tmp_path, capsys):
    out = make_state(state, finished_run, tmp_path / "run")
    for args in (["adapter", "info", str(out / "final")],
                 ["generate", "--checkpoint-dir", str(tiny_bundle), "--caption", "x", "--adapter", str(out / "final"),
                  "--duration", "2", "--out", str(tmp_path / "takes")]):
        code, text = _run(args, capsys)
        assert code == 2, text
        if state == "checkpoints":
            assert "step_0000003 (the latest checkpoint, step 3)" in text
            fixed = [str(out / "checkpoints" / "step_0000003") if a == str(out / "final") else a for a in args]
            assert _run(fixed, capsys)[0] == 0  # the fix
        else:
            assert "has saved no adapter yet" in text
