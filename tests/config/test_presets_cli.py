"""`acetune presets ...` through typer's CliRunner (the lead registers the app under `acetune presets`)."""

from __future__ import annotations

import tomllib

from typer.testing import CliRunner

from acetune.cli.presets_cmd import app
from acetune.config import load_preset_data
from acetune.errors import AcetuneError, ConfigError

runner = CliRunner()


def _ok(args: list[str]):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def _fails(args: list[str]) -> AcetuneError:
    result = runner.invoke(app, args)
    assert isinstance(result.exception, AcetuneError), (result.output, result.exception)
    return result.exception


def test_list_shows_builtins_and_user_presets(tmp_path):
    (tmp_path / "mine.toml").write_text('description = "my own"\n[loop]\nepochs = 2\n')
    out = _ok(["list", "--folder", str(tmp_path)])
    assert "vram_24gb_plus" in out and "mine" in out and "my own" in out


def test_show_prints_deltas_and_resolved_config(tmp_path):
    out = _ok(["show", "vram_8gb", "--set", "optim.lr=5e-4", "--folder", str(tmp_path)])
    deltas, resolved = out.split("# resolved config")
    assert tomllib.loads(deltas) == load_preset_data("vram_8gb")  # [tables] survive (no rich markup)
    resolved = tomllib.loads(resolved.split("\n", 1)[1])
    assert resolved["optim"]["lr"] == 5e-4 and resolved["adapter"]["rank"] == 16
    assert resolved["data"]["crop_frames"] == 750


def test_show_adapted_to_lokr(tmp_path):
    out = _ok(["show", "vram_8gb", "--adapter-kind", "lokr", "--folder", str(tmp_path)])
    resolved = tomllib.loads(out.split("# resolved config")[1].split("\n", 1)[1])
    assert resolved["adapter"]["kind"] == "lokr" and resolved["adapter"]["rank"] == 64


def test_save_from_file_with_overrides_then_export_and_import(tmp_path):
    folder = tmp_path / "presets"
    src = tmp_path / "run.toml"
    src.write_text('description = "from file"\n[adapter]\nrank = 8\n[optim]\nlr = 1e-4\n')
    out = _ok(["save", "small", "--from", str(src), "--set", "loop.epochs=7", "--folder", str(folder)])
    assert "saved preset small" in out
    data = load_preset_data("small", folder=folder)
    assert data["description"] == "from file" and data["adapter"] == {"rank": 8} and data["loop"] == {"epochs": 7}
    assert "optim" not in data  # lr = default is not a delta
    err = _fails(["save", "small", "--from", str(src), "--folder", str(folder)])
    assert isinstance(err, ConfigError) and "already exists" in str(err)
    _ok(["save", "small", "--set", "loop.epochs=9", "--overwrite", "--folder", str(folder)])
    assert load_preset_data("small", folder=folder)["loop"] == {"epochs": 9}
    exported = tmp_path / "out" / "small.json"
    _ok(["export", "small", str(exported), "--folder", str(folder)])
    assert exported.is_file()
    _ok(["import", str(exported), "--name", "copy", "--folder", str(folder)])
    assert load_preset_data("copy", folder=folder)["loop"] == {"epochs": 9}


def test_errors_propagate_as_acetune_errors(tmp_path):
    folder = str(tmp_path)
    assert "unknown preset 'vram_9gb'" in str(_fails(["show", "vram_9gb", "--folder", folder]))
    assert "--set: unknown key optim.lrr; did you mean optim.lr?" in str(
        _fails(["show", "recommended", "--set", "optim.lrr=1", "--folder", folder]))
    assert "nothing to save" in str(_fails(["save", "x", "--folder", folder]))
    assert "built-in preset" in str(_fails(["save", "quick_test", "--set", "loop.epochs=2", "--folder", folder]))
    assert "malformed override" in str(_fails(["save", "x", "--set", "loop.epochs", "--folder", folder]))
    bad = tmp_path / "bad.toml"
    bad.write_text("[loop\n")
    assert "bad.toml: invalid TOML" in str(_fails(["import", str(bad), "--folder", folder]))
    target = tmp_path / "exists.toml"
    target.write_text("")
    assert "already exists" in str(_fails(["export", "recommended", str(target), "--folder", folder]))
