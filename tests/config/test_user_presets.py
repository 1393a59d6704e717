"""User presets: save, list, import, export and their refusals (all in tmp folders)."""

from __future__ import annotations

import json
import tomllib

import pytest

from acetune.config import (
    BUILTIN_PRESETS,
    CONFIG_VERSION,
    default_presets_dir,
    export_preset,
    import_preset,
    list_presets,
    load_preset_data,
    resolve_config,
    save_preset,
)
from acetune.errors import ConfigError


def test_save_keeps_only_deltas_and_resolves(tmp_path):
    full = {"adapter": {"rank": 32, "alpha": 128.0}, "optim": {"lr": 1e-4, "grad_accum": 2}}  # alpha, lr = defaults
    path = save_preset("vocals", full, folder=tmp_path, description="vocal LoRA")
    assert path == tmp_path / "vocals.toml"
    data = tomllib.loads(path.read_text())
    assert data == {"description": "vocal LoRA", "config_version": CONFIG_VERSION,
                    "adapter": {"rank": 32}, "optim": {"grad_accum": 2}}
    config = resolve_config(preset="vocals", presets_dir=tmp_path)
    assert config.adapter.rank == 32 and config.optim.grad_accum == 2


def test_save_refusals(tmp_path):
    save_preset("mine", {"adapter": {"rank": 8}}, folder=tmp_path)
    with pytest.raises(ConfigError, match="preset 'mine' already exists"):
        save_preset("mine", {"adapter": {"rank": 16}}, folder=tmp_path)
    save_preset("mine", {"adapter": {"rank": 16}}, folder=tmp_path, overwrite=True)
    assert load_preset_data("mine", folder=tmp_path)["adapter"]["rank"] == 16
    with pytest.raises(ConfigError, match="'vram_8gb' is a built-in preset"):
        save_preset("vram_8gb", {"adapter": {"rank": 8}}, folder=tmp_path)
    for bad in ("My Preset", "UPPER", "a/b", "", "dots.toml"):
        with pytest.raises(ConfigError, match="invalid preset name"):
            save_preset(bad, {}, folder=tmp_path)
    with pytest.raises(ConfigError, match=r"preset bad: unknown key adapter\.rnk; did you mean adapter\.rank\?"):
        save_preset("bad", {"adapter": {"rnk": 8}}, folder=tmp_path)
    with pytest.raises(ConfigError, match=r"adapter\.rank = 0"):
        save_preset("bad", {"adapter": {"rank": 0}}, folder=tmp_path)
    assert not (tmp_path / "bad.toml").exists()


def test_list_builtin_then_user_with_problems(tmp_path):
    save_preset("alpha-1", {"optim": {"lr": 2e-4}}, folder=tmp_path, description="first")
    (tmp_path / "vram_8gb.toml").write_text('description = "shadow"\n')
    (tmp_path / "Bad Name.toml").write_text('description = "x"\n')
    (tmp_path / "broken.toml").write_text("[optim\n")
    (tmp_path / "typo.toml").write_text("[optim]\nlrr = 1.0\n")
    infos = list_presets(folder=tmp_path)
    assert [i.name for i in infos[:len(BUILTIN_PRESETS)]] == list(BUILTIN_PRESETS)
    assert all(i.builtin and i.description and i.problem is None for i in infos[:len(BUILTIN_PRESETS)])
    users = {i.name: i for i in infos[len(BUILTIN_PRESETS):]}
    assert users["alpha-1"].description == "first" and users["alpha-1"].problem is None
    assert not users["alpha-1"].builtin and users["alpha-1"].path == tmp_path / "alpha-1.toml"
    assert "shadows a built-in" in users["vram_8gb"].problem
    assert "not a valid preset name" in users["Bad Name"].problem
    assert "invalid TOML" in users["broken"].problem
    assert "unknown key optim.lrr" in users["typo"].problem
    assert len(list_presets(folder=tmp_path / "absent")) == len(BUILTIN_PRESETS)


def test_import_validates_and_names(tmp_path):
    src = tmp_path / "shared-preset.json"
    src.write_text(json.dumps({"description": "from a friend", "adapter": {"rank": 24}}))
    folder = tmp_path / "presets"
    path = import_preset(src, folder=folder)
    assert path == folder / "shared-preset.toml"
    assert load_preset_data("shared-preset", folder=folder)["description"] == "from a friend"
    assert import_preset(src, name="renamed", folder=folder) == folder / "renamed.toml"
    with pytest.raises(ConfigError, match="already exists"):
        import_preset(src, folder=folder)
    bad = tmp_path / "typo.toml"
    bad.write_text("[adapter]\nrnk = 3\n")
    with pytest.raises(ConfigError, match=r"typo\.toml: unknown key adapter\.rnk; did you mean adapter\.rank\?"):
        import_preset(bad, folder=folder)
    odd = tmp_path / "Odd Name.toml"
    odd.write_text("[adapter]\nrank = 3\n")
    with pytest.raises(ConfigError, match="pass a name with --name"):
        import_preset(odd, folder=folder)
    with pytest.raises(ConfigError, match="'quick_test' is a built-in preset"):
        import_preset(odd, name="quick_test", folder=folder)


def test_export_builtin_and_user(tmp_path):
    out = export_preset("vram_12gb", tmp_path / "v12.toml")
    assert out.read_text().startswith("description = ") and "# " in out.read_text()  # comments kept
    assert tomllib.loads(out.read_text()) == load_preset_data("vram_12gb")
    with pytest.raises(ConfigError, match="already exists"):
        export_preset("vram_12gb", out)
    export_preset("quick_test", out, overwrite=True)
    assert tomllib.loads(out.read_text())["description"] == load_preset_data("quick_test")["description"]
    folder = tmp_path / "presets"
    save_preset("mine", {"loop": {"epochs": 5}}, folder=folder, description="d")
    as_json = export_preset("mine", tmp_path / "mine.json", folder=folder)
    assert json.loads(as_json.read_text())["loop"] == {"epochs": 5}
    round_trip = import_preset(as_json, name="again", folder=folder)
    assert tomllib.loads(round_trip.read_text()) == tomllib.loads((folder / "mine.toml").read_text())
    with pytest.raises(ConfigError, match="unsupported preset file type"):
        export_preset("mine", tmp_path / "mine.yaml", folder=folder)
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        export_preset("nope", tmp_path / "nope.toml", folder=folder)


def test_default_folder_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("ACETUNE_PRESETS_DIR", str(tmp_path / "env-presets"))
    assert default_presets_dir() == tmp_path / "env-presets"
    save_preset("from-env", {"loop": {"epochs": 3}})
    assert (tmp_path / "env-presets" / "from-env.toml").is_file()
    assert resolve_config(preset="from-env").loop.epochs == 3
    monkeypatch.delenv("ACETUNE_PRESETS_DIR")
    assert default_presets_dir().parts[-3:] == (".config", "acetune", "presets")
