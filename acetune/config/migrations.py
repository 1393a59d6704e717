"""Config versions: refuse configs from a newer acetune, migrate those from an older one.

`MIGRATIONS[n]` turns a version-n dict into a version-(n + 1) dict, one small function per
version. Layers can be partial (a preset, a `--set` list), so a migration touches only the keys
that are present, except where a new field's default differs from what the old version did:
there it writes the old behaviour in, so the config means what it meant when it was written
(a run resumed from its config.resolved.toml and state.json computes as it did). A dict without
`config_version` is taken to be current.
"""

from __future__ import annotations

import copy
from typing import Callable

from acetune.config.schema import CONFIG_VERSION
from acetune.errors import ConfigError


def _rope_dtype_was_fp32(data: dict) -> dict:
    """1 -> 2: `loop.rope_dtype` came with version 2 (default `model`); every version-1 run used fp32 frequencies."""
    loop = data.setdefault("loop", {})
    if isinstance(loop, dict):  # anything else is refused by the loader, naming the key
        loop.setdefault("rope_dtype", "fp32")
    return data


def _num_workers_removed(data: dict) -> dict:
    """2 -> 3: `data.num_workers` was declared but read by nothing (samples load memory-mapped in the loop)."""
    section = data.get("data")
    if isinstance(section, dict):
        section.pop("num_workers", None)
    return data


MIGRATIONS: dict[int, Callable[[dict], dict]] = {1: _rope_dtype_was_fp32, 2: _num_workers_removed}


def migrate(data: dict, *, source: str, current: int = CONFIG_VERSION) -> dict:
    """`data` brought up to version `current` (a new dict when anything changed)."""
    version = data.get("config_version", current)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ConfigError(f"{source}: config_version must be an integer, got {version!r}",
                          fix=f"set config_version = {current}")
    if version > current:
        raise ConfigError(f"{source}: config_version {version} is newer than this acetune understands ({current})",
                          fix="upgrade acetune, or write the config for this version")
    if version < 1:
        raise ConfigError(f"{source}: config_version must be >= 1, got {version}",
                          fix=f"set config_version = {current}")
    if version == current:
        return data
    data = copy.deepcopy(data)
    for step in range(version, current):
        if step not in MIGRATIONS:
            raise ConfigError(f"{source}: acetune cannot migrate config_version {step} to {step + 1}",
                              fix="write the config again with this acetune version")
        data = MIGRATIONS[step](data)
    data["config_version"] = current
    return data
