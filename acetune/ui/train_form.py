"""The Train page's form as data: which config fields it shows, how each is edited, and what the values mean.

The advanced section is every training field of the typed config (`config_fields()` less the
`preprocess` section) that the page does not show on top, grouped by section, with the schema's own
help text, so a field added to the schema appears here without UI code (as `--set` reaches it on the
command line). Values become `--set` style overrides on top of the chosen preset, and the child
process trains on exactly that config.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from acetune.config import RunConfig, list_presets, preset_for_adapter, resolve_config, write_config
from acetune.config.fields import FieldInfo, config_fields
from acetune.config.files import toml_value

# the options users change most (the CLI's first-class train flags, roughly); the rest is "advanced"
COMMON = ("data.cache", "data.checkpoint_dir", "save.output_dir", "adapter.kind", "adapter.rank", "adapter.alpha",
          "optim.lr", "loop.epochs", "loop.max_steps", "data.batch_size", "optim.grad_accum", "data.crop_frames",
          "save.save_every", "audition.every_steps", "audition.prompts")
PATH_FIELDS = ("data.cache", "data.checkpoint_dir", "save.output_dir")
NOT_TRAINED = ("preprocess",)  # config sections training does not read (the Preprocess page makes the cache)


@dataclass(frozen=True)
class FormField:
    """One config field as a form control: checkbox, choice, number or text (TOML for lists)."""

    info: FieldInfo
    control: str  # "checkbox" | "choice" | "integer" | "number" | "text" | "toml"
    choices: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.info.key

    @property
    def section(self) -> str:
        return self.info.key.split(".", 1)[0]

    def shown(self, value: Any) -> Any:
        """A config value as the control holds it."""
        if self.control == "toml":
            return toml_value(list(value))
        if self.control == "text":
            return "" if value is None else str(value)
        return value.value if isinstance(value, Enum) else value

    def override(self, value: Any) -> str | None:
        """`key=value` for the config loader (None: an empty optional text, which keeps the preset's)."""
        if self.control == "toml":
            return f"{self.key}={value}"
        if self.control == "text" and value in ("", None) and self.info.default is None:
            return None
        if self.control == "integer" and value is not None:
            value = int(value)
        return f"{self.key}={toml_value(value)}"


def form_field(info: FieldInfo) -> FormField:
    kind = info.type
    if kind is bool:
        return FormField(info, "checkbox")
    if isinstance(kind, type) and issubclass(kind, Enum):
        return FormField(info, "choice", tuple(member.value for member in kind))
    if kind is int:
        return FormField(info, "integer")
    if kind is float:
        return FormField(info, "number")
    if kind is str or str(kind) in ("str | None", "typing.Optional[str]"):
        return FormField(info, "text")
    return FormField(info, "toml")  # tuples: written as TOML lists


def form_fields() -> list[FormField]:
    """Common fields first (in COMMON's order), then every other field in schema order."""
    by_key = {info.key: form_field(info) for info in config_fields() if info.key.split(".")[0] not in NOT_TRAINED}
    return [by_key[key] for key in COMMON] + [f for key, f in by_key.items() if key not in COMMON]


def preset_names() -> list[str]:
    """Built-in presets, then the user's usable ones (as `acetune presets list` lists them)."""
    return [info.name for info in list_presets() if info.problem is None]


def preset_values(preset: str, fields: list[FormField]) -> list[Any]:
    """The values a preset gives every field, as the controls hold them."""
    config = resolve_config(preset=preset)
    return [f.shown(_value(config, f.key)) for f in fields]


def preset_keys(preset: str) -> set[str]:
    """The field keys a preset sets (presets are sparse: they list only what they change)."""
    def walk(table: dict, prefix: str) -> list[str]:
        return [key for name, value in table.items()
                for key in (walk(value, f"{prefix}{name}.") if isinstance(value, dict) else [prefix + name])]

    return set(walk(preset_for_adapter(preset, RunConfig().adapter.kind), ""))


def switched_values(old: str, new: str, fields: list[FormField], values: list[Any]) -> dict[str, Any]:
    """What choosing preset `new` (in place of `old`) changes on the form: key -> its new value.

    A preset sets only what it declares; a field it does not declare follows it only when it still
    holds what `old` gave it, so a value the user typed (a checkpoints folder, say) stays."""
    declared = preset_keys(new)
    before, after = preset_values(old, fields), preset_values(new, fields)
    return {f.key: want for f, value, was, want in zip(fields, values, before, after)
            if value != want and (f.key in declared or value == was)}


def build_config(preset: str, fields: list[FormField], values: list[Any]) -> RunConfig:
    """The run's config: the preset, then each control whose value differs from what the preset gives it.

    Raises the same ConfigError the CLI raises for the same `--set` (a wrong type, an impossible value)."""
    base = resolve_config(preset=preset)
    overrides = []
    for f, value in zip(fields, values):
        if value == f.shown(_value(base, f.key)):
            continue
        override = f.override(value)
        if override is not None:
            overrides.append(override)
    return resolve_config(preset=preset, overrides=overrides)


def write_run_config(config: RunConfig, folder: Path, name: str) -> Path:
    """The config file the child process trains on (`acetune train -c FILE`)."""
    folder.mkdir(parents=True, exist_ok=True)
    return write_config(config, folder / f"{name}.toml")


def _value(config: RunConfig, key: str) -> Any:
    """The value at a dotted field key; sections may nest (`objective.task_mix.cover`)."""
    value: Any = config
    for name in key.split("."):
        value = getattr(value, name)
    return value
