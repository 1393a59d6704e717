"""The Preprocess page's options as data: every field of the config's `preprocess` section, from the schema.

The options are generated from `PreprocessConfig` (type, default and help), as the Train form is from
the training sections, so a field added to the section appears on the page without UI code. A value
the user changed goes to `acetune preprocess` as `--set preprocess.key=value`.
"""

from __future__ import annotations

from typing import Any

from acetune.config import PreprocessConfig, resolve_config
from acetune.config.fields import config_fields
from acetune.ui.train_form import FormField, form_field

SECTION = "preprocess"


def preprocess_fields() -> list[FormField]:
    """The section's fields in schema order."""
    return [form_field(info) for info in config_fields() if info.key.split(".", 1)[0] == SECTION]


def default_values(fields: list[FormField]) -> list[Any]:
    """PreprocessConfig's defaults, as the controls hold them."""
    defaults = PreprocessConfig()
    return [f.shown(getattr(defaults, f.key.split(".", 1)[1])) for f in fields]


def preprocess_overrides(fields: list[FormField], values: list[Any]) -> tuple[list[str], PreprocessConfig]:
    """The `key=value` overrides of the controls that differ from the defaults, and the options they make.

    Raises the ConfigError `acetune preprocess --set` would raise (naming `preprocess.<key>`), so a wrong
    value is refused beside its field before any job starts."""
    overrides = []
    for f, value, default in zip(fields, values, default_values(fields)):
        override = None if value == default else f.override(value)
        if override is not None:
            overrides.append(override)
    return overrides, resolve_config(overrides=overrides).preprocess
