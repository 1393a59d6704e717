"""The strict RunConfig loader: types from annotations, unknown keys, files, overrides, round trips."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from typing import Literal

import pytest

from acetune.config import (
    CONFIG_VERSION,
    MIGRATIONS,
    AdapterKind,
    OptimizerKind,
    RunConfig,
    apply_overrides,
    config_diff,
    config_from_dict,
    config_to_dict,
    dumps_toml,
    load_config_file,
    migrate,
    resolve_config,
    validate,
    write_config,
)
from acetune.config.loader import _build
from acetune.errors import ConfigError


def test_defaults_validate_and_empty_dict_is_the_defaults():
    validate(RunConfig())
    assert config_from_dict({}, source="x") == RunConfig()


def test_values_convert_by_annotation():
    config = config_from_dict({
        "adapter": {"kind": "lokr", "projections": ["q_proj", "v_proj"], "alpha": 16},
        "optim": {"optimizer": "prodigy", "lr": 1, "betas": [0.9, 0.99]},
        "loop": {"eval_timesteps": [0.25, 0.75]},
        "data": {"model": "acestep-v15-base"},
        "save": {"resume_from": None},
    }, source="x")
    assert config.adapter.kind is AdapterKind.LOKR and config.optim.optimizer is OptimizerKind.PRODIGY
    assert config.adapter.projections == ("q_proj", "v_proj") and config.optim.betas == (0.9, 0.99)
    assert config.loop.eval_timesteps == (0.25, 0.75)
    assert config.adapter.alpha == 16.0 and isinstance(config.adapter.alpha, float)  # int is fine for a float
    assert isinstance(config.optim.lr, float) and config.data.model == "acestep-v15-base"


def test_enum_members_are_accepted_too():
    config = config_from_dict({"adapter": {"kind": AdapterKind.DORA}}, source="x")
    assert config.adapter.kind is AdapterKind.DORA


@pytest.mark.parametrize("data, message", [
    ({"optim": {"lrr": 1e-4}}, r"cfg\.toml: unknown key optim\.lrr; did you mean optim\.lr\?"),
    ({"adaptor": {}}, r"cfg\.toml: unknown key adaptor; did you mean adapter\?"),
    ({"loop": {"gradient_checkpoint": 1.0}}, r"loop\.gradient_checkpoint; did you mean loop\.gradient_checkpointing\?"),
    ({"loop": {"zzzz": 1}}, r"cfg\.toml: unknown key loop\.zzzz\n"),
])
def test_unknown_keys_name_source_key_and_closest(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data, source="cfg.toml")


@pytest.mark.parametrize("data, message", [
    ({"adapter": {"rank": "64"}}, r"src: adapter\.rank must be an integer, got '64' \(str\)"),
    ({"adapter": {"rank": 64.0}}, r"adapter\.rank must be an integer, got 64\.0 \(float\)"),
    ({"adapter": {"rank": True}}, r"adapter\.rank must be an integer, got True"),
    ({"adapter": {"target_mlp": 1}}, r"adapter\.target_mlp must be a boolean \(true/false\), got 1 \(int\)"),
    ({"optim": {"lr": "fast"}}, r"optim\.lr must be a number, got 'fast'"),
    ({"optim": {"lr": None}}, r"optim\.lr must be a number, got null"),
    ({"optim": {"lr": False}}, r"optim\.lr must be a number, got False"),
    ({"optim": {"betas": [0.9]}}, r"optim\.betas needs 2 values, got 1"),
    ({"optim": {"betas": 0.9}}, r"optim\.betas must be a list of 2 numbers"),
    ({"optim": {"optimizer": "adamw9bit"}}, r"optim\.optimizer must be one of adamw, .*; did you mean 'adamw8bit'\?"),
    ({"adapter": {"projections": ["q_proj", 3]}}, r"adapter\.projections\[1\] must be a string, got 3"),
    ({"data": {"model": 5}}, r"data\.model must be a string or null \(unset\), got 5"),
    ({"data": 3}, r"data must be a table, got 3"),
    ({"optim": {"lr": {"x": 1}}}, r"optim\.lr must be a number, got a table"),
    ({"config_version": "1"}, r"config_version must be an integer"),
])
def test_wrong_types_name_key_expected_and_value(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data, source="src")


def test_none_only_where_the_annotation_allows_it():
    assert config_from_dict({"save": {"resume_from": None}}, source="x").save.resume_from is None
    with pytest.raises(ConfigError, match=r"save\.output_dir must be a string, got null"):
        config_from_dict({"save": {"output_dir": None}}, source="x")


def test_config_version_newer_is_refused_and_migrations_apply(monkeypatch):
    with pytest.raises(ConfigError, match=rf"config_version {CONFIG_VERSION + 1} is newer"):
        config_from_dict({"config_version": CONFIG_VERSION + 1}, source="x")
    with pytest.raises(ConfigError, match="must be >= 1"):
        config_from_dict({"config_version": 0}, source="x")
    monkeypatch.setitem(MIGRATIONS, 1, lambda d: {**d, "optim": {"lr": d["optim"]["learning_rate"]}})
    old = {"config_version": 1, "optim": {"learning_rate": 3e-4}}
    assert migrate(old, source="x", current=2) == {"config_version": 2, "optim": {"lr": 3e-4}}
    assert old == {"config_version": 1, "optim": {"learning_rate": 3e-4}}  # the input is not changed
    # 2 -> 3: data.num_workers, which nothing read, is gone
    assert migrate({"config_version": 2, "data": {"num_workers": 4, "batch_size": 2}}, source="x", current=3) == \
        {"config_version": 3, "data": {"batch_size": 2}}
    monkeypatch.delitem(MIGRATIONS, 2)
    with pytest.raises(ConfigError, match="cannot migrate config_version 2 to 3"):
        migrate(old, source="x", current=3)


def _with(dotted: str, value) -> RunConfig:
    section, key = dotted.split(".")
    return config_from_dict({section: {key: value}}, source="test")


@pytest.mark.parametrize("dotted, value", [
    ("adapter.rank", 0), ("adapter.alpha", 0.0), ("adapter.alpha", -1.0), ("adapter.dropout", 1.0),
    ("adapter.dropout", -0.1), ("optim.lr", 0.0), ("optim.lr", -1e-4), ("optim.weight_decay", -0.01),
    ("optim.grad_accum", 0), ("data.batch_size", 0), ("loop.epochs", 0), ("loop.max_steps", -1),
    ("data.crop_frames", -1), ("data.val_split", 0.6), ("data.val_split", -0.1), ("objective.cfg_ratio", 1.5),
    ("objective.cfg_ratio", -0.1), ("loop.gradient_checkpointing", 1.5), ("loop.gradient_checkpointing", -0.5),
    ("loop.ema_decay", 1.0), ("loop.ema_decay", -0.1), ("save.keep_last", 0), ("schedule.warmup_start_factor", 0.0),
    ("schedule.warmup_start_factor", 1.5), ("schedule.min_lr_ratio", 1.5), ("schedule.min_lr_ratio", -0.1),
    ("schedule.restarts", 0), ("loop.eval_timesteps", [0.5, 1.0]), ("loop.eval_timesteps", [0.0]),
    ("loop.eval_timesteps", []), ("loop.window_convention", "sdpa"), ("adapter.bias", "some"),
    ("adapter.projections", ["q_proj", "gate_proj"]), ("optim.betas", [0.9, 1.0]), ("log.log_every", 0),
])
def test_impossible_values_name_the_key_and_a_fix(dotted, value):
    with pytest.raises(ConfigError, match=rf"^{dotted.replace('.', '[.]')} = .*\n  fix: ") as err:
        validate(_with(dotted, value))
    assert err.value.fix


@pytest.mark.parametrize("dotted, value", [
    ("data.val_split", 0.5), ("adapter.dropout", 0.0), ("loop.gradient_checkpointing", 1.0), ("loop.ema_decay", 0.999),
    ("schedule.warmup_start_factor", 1.0), ("schedule.min_lr_ratio", 0.0), ("objective.cfg_ratio", 1.0),
    ("loop.window_convention", "flash"), ("adapter.bias", "lora_only"), ("adapter.projections", ["o_proj"]),
])
def test_boundary_values_are_allowed(dotted, value):
    validate(_with(dotted, value))


def test_full_finetune_needs_opt_in():
    with pytest.raises(ConfigError, match="set adapter.allow_full = true, or use lora"):
        validate(_with("adapter.kind", "full"))
    validate(config_from_dict({"adapter": {"kind": "full", "allow_full": True}}, source="x"))


def test_prodigy_with_cosine_is_left_to_the_trainer():
    validate(config_from_dict({"optim": {"optimizer": "prodigy", "lr": 1.0}, "schedule": {"scheduler": "cosine"}},
                              source="x"))


def test_every_problem_is_reported_at_once():
    config = config_from_dict({"adapter": {"rank": 0}, "optim": {"lr": 0.0}}, source="x")
    with pytest.raises(ConfigError, match=r"2 impossible values:\n  adapter\.rank = 0 .*\n  optim\.lr = 0\.0"):
        validate(config)


def test_apply_overrides_parses_toml_values_and_keeps_strings():
    data = {"optim": {"lr": 1e-3, "eps": 1e-8}}
    out = apply_overrides(data, ["optim.lr=1e-4", "adapter.target_mlp=true", "loop.eval_timesteps=[0.1, 0.5]",
                                 "save.output_dir=runs/a b", 'data.cache="quoted"', " adapter.rank = 32 "])
    assert out == {"optim": {"lr": 1e-4, "eps": 1e-8}, "adapter": {"target_mlp": True, "rank": 32},
                   "loop": {"eval_timesteps": [0.1, 0.5]}, "save": {"output_dir": "runs/a b"},
                   "data": {"cache": "quoted"}}
    assert data == {"optim": {"lr": 1e-3, "eps": 1e-8}}  # the input is not changed
    assert apply_overrides({}, ["a.b=1\nc = 2"]) == {"a": {"b": "1\nc = 2"}}  # one value, never extra keys


@pytest.mark.parametrize("item", ["optim.lr", "=3", "optim..lr=1", "optim.=1"])
def test_malformed_override_is_named(item):
    with pytest.raises(ConfigError, match=rf"--set: malformed override {item!r}".replace(".", "[.]")):
        apply_overrides({}, [item])


def test_override_into_a_value_is_refused():
    with pytest.raises(ConfigError, match=r"optim\.lr is a value, not a table"):
        apply_overrides({"optim": {"lr": 1.0}}, ["optim.lr.x=1"])


def test_precedence_defaults_preset_files_set(tmp_path):
    first = tmp_path / "first.toml"
    first.write_text("[optim]\nlr = 5e-4\ngrad_accum = 3\n[adapter]\nrank = 8\n")
    second = tmp_path / "second.json"
    second.write_text(json.dumps({"optim": {"grad_accum": 6}}))
    config = resolve_config(preset="vram_8gb", files=[first, second], overrides=["adapter.rank=12"])
    assert config.data.crop_frames == 750  # preset over default
    assert config.optim.lr == 5e-4  # file over preset
    assert config.optim.grad_accum == 6  # later file over earlier file
    assert config.adapter.rank == 12  # --set over everything
    assert config.adapter.alpha == 32.0  # preset value nobody overrode
    assert config.loop.seed == 42  # default nobody overrode
    assert resolve_config(preset=None, files=[], overrides=[]) == RunConfig()


def test_resolve_names_the_source_of_an_unknown_key(tmp_path):
    bad = tmp_path / "mine.toml"
    bad.write_text("[optim]\nlrr = 1e-4\n")
    with pytest.raises(ConfigError, match=r"mine\.toml: unknown key optim\.lrr; did you mean optim\.lr\?"):
        resolve_config(preset="recommended", files=[bad])
    with pytest.raises(ConfigError, match=r"^--set: unknown key adapter\.rnk; did you mean adapter\.rank\?"):
        resolve_config(preset="recommended", overrides=["adapter.rnk=3"])
    with pytest.raises(ConfigError, match=r"^--set: optim\.lr must be a number, got 'fast'"):
        resolve_config(overrides=["optim.lr=fast"])
    with pytest.raises(ConfigError, match=r"^--set: unknown key description"):
        resolve_config(overrides=["description=hi"])


def test_resolve_validates_the_merged_result(tmp_path):
    with pytest.raises(ConfigError, match=r"adapter\.rank = 0"):
        resolve_config(preset="recommended", overrides=["adapter.rank=0"])


def test_files_may_carry_a_description(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('description = "my run"\n[optim]\nlr = 2e-4\n')
    assert resolve_config(files=[path]).optim.lr == 2e-4
    path.write_text("description = 3\n")
    with pytest.raises(ConfigError, match=r"run\.toml: description must be a string"):
        resolve_config(files=[path])


def test_toml_and_json_files(tmp_path):
    (tmp_path / "a.toml").write_text("[adapter]\nrank = 8\n")
    (tmp_path / "a.json").write_text('{"adapter": {"rank": 8}}')
    assert load_config_file(tmp_path / "a.toml") == load_config_file(tmp_path / "a.json") == {"adapter": {"rank": 8}}


@pytest.mark.parametrize("name, text, message", [
    ("bad.toml", "[adapter]\nrank = = 8\n", r"bad\.toml: invalid TOML: .*line 2"),
    ("bad.json", '{"adapter": {"rank": 8,}}', r"bad\.json: invalid JSON: .*line 1, column 24"),
    ("list.json", "[1, 2]", r"list\.json: a JSON config must be an object"),
    ("conf.yaml", "adapter: {}", r"conf\.yaml: unsupported config file type '\.yaml'"),
    ("latin.toml", b"description = \"caf\xe9\"", r"latin\.toml: the file is not UTF-8"),
])
def test_file_errors_name_the_file(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError, match=message):
        load_config_file(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"missing\.toml: config file not found"):
        load_config_file(tmp_path / "missing.toml")


def _unusual() -> RunConfig:
    return config_from_dict({
        "data": {"cache": 'tab\tquote" back\\slash\nnew é 🎵 \x7f \x01', "model": "m", "val_split": 0.1},
        "adapter": {"kind": "loha", "projections": ["o_proj"], "alpha": 1e-7, "use_tucker": True},
        "optim": {"lr": 0.1 + 0.2, "eps": 1e-30, "betas": [0.5, 0.25]},
        "loop": {"eval_timesteps": [1 / 3], "seed": 2**40, "max_steps": 7},
        "save": {"resume_from": "latest"},
    }, source="x")


@pytest.mark.parametrize("config", [RunConfig(), _unusual()], ids=["defaults", "unusual"])
def test_round_trip_dict_and_files(tmp_path, config):
    assert config_from_dict(config_to_dict(config), source="x") == config
    for suffix in (".toml", ".json"):
        path = write_config(config, tmp_path / f"run{suffix}")
        assert config_from_dict(load_config_file(path), source=str(path)) == config
    assert json.loads((tmp_path / "run.json").read_text())["save"]["resume_from"] == config.save.resume_from


def test_config_to_dict_uses_plain_values():
    data = config_to_dict(RunConfig())
    assert data["adapter"]["kind"] == "lora" and type(data["adapter"]["kind"]) is str
    assert data["adapter"]["projections"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert data["config_version"] == CONFIG_VERSION and data["save"]["resume_from"] is None


def test_dumps_toml_reads_back():
    data = {"top": 1, "s": "a\"b\\c\u0000\x7f", "t": {"f": float("inf"), "l": [1.5, -2.0], "u": {"b": False}},
            "odd key": "x"}
    assert tomllib.loads(dumps_toml(data)) == data


def test_config_diff_lines():
    a = RunConfig()
    b = config_from_dict({"adapter": {"rank": 32, "kind": "lokr"}, "save": {"resume_from": "latest"},
                          "loop": {"eval_timesteps": [0.5]}}, source="x")
    assert config_diff(a, b) == [
        'adapter.kind: "lora" -> "lokr"',
        "adapter.rank: 64 -> 32",
        "loop.eval_timesteps: [0.1, 0.3, 0.5, 0.7, 0.9] -> [0.5]",
        'save.resume_from: unset -> "latest"',
    ]
    assert config_diff(b, b) == []


@dataclass(frozen=True)
class Inner:
    mode: Literal["a", "b"] = "a"
    sizes: tuple[int, ...] = (1,)


@dataclass(frozen=True)
class Outer:
    count: int | None = None
    inner: Inner = field(default_factory=Inner)


def test_a_new_field_needs_no_loader_change():
    """The loader reads types from annotations: any dataclass tree of supported types loads strictly."""
    assert _build(Outer, {"count": 3, "inner": {"mode": "b", "sizes": [2, 3]}}, (), "t") == Outer(3, Inner("b", (2, 3)))
    with pytest.raises(ConfigError, match=r"t: inner\.mode must be one of a, b, got 'c'"):
        _build(Outer, {"inner": {"mode": "c"}}, (), "t")
    with pytest.raises(ConfigError, match=r"t: inner\.sizes\[0\] must be an integer, got 1\.5"):
        _build(Outer, {"inner": {"sizes": [1.5]}}, (), "t")
    with pytest.raises(ConfigError, match=r"unknown key inner\.sises; did you mean inner\.sizes\?"):
        _build(Outer, {"inner": {"sises": [1]}}, (), "t")


def test_a_version_1_config_keeps_the_fp32_rope_it_ran_with():
    """loop.rope_dtype came with version 2 (default `model`); acetune before it computed fp32 frequencies."""
    assert RunConfig().loop.rope_dtype.value == "model"
    old = {"config_version": 1, "adapter": {"rank": 4}}  # a run's config.resolved.toml / state.json from then
    assert config_from_dict(old, source="x").loop.rope_dtype.value == "fp32"
    assert config_from_dict({"config_version": 1, "loop": {"rope_dtype": "model"}}, source="x").loop.rope_dtype.value \
        == "model"  # a value it states is kept
    assert config_from_dict({"adapter": {"rank": 4}}, source="x").loop.rope_dtype.value == "model"  # current
