"""`acetune model info` / `make-tiny` run in-process; errors exit 2 with a message naming the input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from acetune.cli.app import main


def test_make_tiny_then_info(tmp_path, capsys):
    folder = tmp_path / "tiny-ckpt"
    assert main(["model", "make-tiny", str(folder)]) == 0
    assert main(["model", "info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "variant: turbo" in out
    assert "513,702" in out  # total parameters of the tiny config (golden README)
    assert "all 160 keys match" in out
    assert "silence latent: 3000 frames" in out


def test_make_tiny_refuses_to_overwrite(tmp_path, capsys):
    folder = tmp_path / "tiny-ckpt"
    assert main(["model", "make-tiny", str(folder)]) == 0
    assert main(["model", "make-tiny", str(folder)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_info_reports_a_key_mismatch(tmp_path, capsys, tiny_checkpoint):
    folder = tmp_path / "xl-config-2b-weights"
    shutil.copytree(tiny_checkpoint, folder)
    data = json.loads((folder / "config.json").read_text())
    data["num_hidden_layers"], data["layer_types"] = 3, data["layer_types"] + ["sliding_attention"]
    (folder / "config.json").write_text(json.dumps(data))
    assert main(["model", "info", str(folder)]) == 2
    captured = capsys.readouterr()
    assert "MISMATCH" in captured.out and "19 missing key(s): decoder.layers.2." in captured.out
    assert str(folder) in captured.err
    assert main(["model", "info", str(folder), "--no-strict"]) == 0


def test_info_on_a_non_checkpoint(tmp_path, capsys):
    assert main(["model", "info", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not an ACE-Step checkpoint" in err and "Traceback" not in err


def test_console_script_is_installed():
    result = subprocess.run([sys.executable, "-m", "acetune.cli.app", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "0.1.0"
