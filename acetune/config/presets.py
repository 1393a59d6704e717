"""Presets: sparse TOML deltas over the `RunConfig` defaults, built in or saved by the user.

Built-in presets live in `acetune/config/presets/*.toml` (package data, read through
`importlib.resources`). Each holds a top-level `description` and only the fields it changes.
User presets are the same kind of file in a folder of their own (see `user_presets.py`); a name
is looked up among the built-ins first, and a user preset may not take a built-in name.

Presets are written for LoRA. `adapt_preset(data, kind)` / `preset_for_adapter(name, kind)` adjust
one for another adapter kind, by these rules (nothing changes when the preset was written for
the same family, `schema.ADAPTER_BACKENDS`: lora/dora = PEFT, lokr/loha = LyCORIS, full):
1. Fields whose meaning belongs to the preset's own family are dropped: PEFT rank, alpha, dropout,
   bias; LyCORIS rank (linear_dim), alpha (linear_alpha), factor, decompose_both, use_tucker;
   full allow_full and the lr_* multipliers, and its (lowered) optim.lr.
   So LoKr/LoHA from a LoRA preset train with the LyCORIS defaults linear_dim 64, linear_alpha 128
   (our rank 64 / alpha 128), whatever rank the LoRA preset picked for its memory budget.
2. To full: every adapter field except kind and the lr_* multipliers is dropped (there is no rank,
   target list or dropout in a full decoder fine-tune) and optim.lr becomes 1e-5, unless the preset
   uses Prodigy (which wants lr 1.0). allow_full is never set by a preset: it stays the user's opt-in.
3. adapter.kind is set to the new kind (left out for lora, the default, so deltas stay deltas).
Everything else (memory settings, epochs, schedule, cadence) carries over unchanged.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from importlib import resources
from pathlib import Path

from acetune.config.files import load_config_file, parse_toml
from acetune.config.migrations import migrate
from acetune.config.schema import ADAPTER_BACKENDS, AdapterBackend, AdapterKind, OptimizerKind, RunConfig
from acetune.errors import ConfigError

BUILTIN_PRESETS = ("recommended", "quick_test", "high_quality", "vram_8gb", "vram_12gb", "vram_16gb", "vram_24gb_plus")
PRESETS_DIR_ENV = "ACETUNE_PRESETS_DIR"
FULL_FINETUNE_LR = 1e-5
_NAME = re.compile(r"[a-z0-9_-]+")
_FAMILY_FIELDS = {  # the adapter fields whose meaning belongs to one family
    AdapterBackend.PEFT: ("rank", "alpha", "dropout", "bias"),
    AdapterBackend.LYCORIS: ("rank", "alpha", "factor", "decompose_both", "use_tucker"),
    AdapterBackend.FULL: ("allow_full", "lr_attention", "lr_mlp", "lr_norms", "lr_embeddings"),
}
_KEPT_FOR_FULL = ("kind", "lr_attention", "lr_mlp", "lr_norms", "lr_embeddings")


def default_presets_dir() -> Path:
    """The user presets folder: $ACETUNE_PRESETS_DIR, else ~/.config/acetune/presets."""
    env = os.environ.get(PRESETS_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".config" / "acetune" / "presets"


def check_preset_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"invalid preset name {name!r}",
                          fix="use lower-case letters, digits, '_' and '-' only, e.g. my_vocals-v2")
    return name


def builtin_preset_text(name: str) -> str:
    """The TOML text of a built-in preset, comments included."""
    if name not in BUILTIN_PRESETS:
        raise ConfigError(f"no built-in preset {name!r}", fix=f"use one of {', '.join(BUILTIN_PRESETS)}")
    return (resources.files("acetune.config") / "presets" / f"{name}.toml").read_text(encoding="utf-8")


def user_preset_path(name: str, folder: Path | None = None) -> Path:
    return (folder or default_presets_dir()) / f"{check_preset_name(name)}.toml"


def load_preset_data(name: str, *, folder: Path | None = None) -> dict:
    """The preset's dict (description and deltas): a built-in, else `<folder>/<name>.toml`."""
    if name in BUILTIN_PRESETS:
        return parse_toml(builtin_preset_text(name), f"preset {name}")
    check_preset_name(name)
    path = user_preset_path(name, folder)
    if path.is_file():
        return load_config_file(path)
    known = list(BUILTIN_PRESETS) + _user_names(folder or default_presets_dir())
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise ConfigError(f"unknown preset {name!r}{hint}", fix=f"use one of {', '.join(known)} (`acetune presets list`)")


def strip_description(data: dict, *, source: str = "preset") -> dict:
    """The preset's settings without its top-level `description` (a string, or an error)."""
    if "description" not in data:
        return data
    if not isinstance(data["description"], str):
        raise ConfigError(f"{source}: description must be a string, got {data['description']!r}",
                          fix='write it as description = "one line about the preset"')
    return {key: value for key, value in data.items() if key != "description"}


def adapt_preset(data: dict, kind: AdapterKind | str) -> dict:
    """A copy of preset deltas adjusted for adapter `kind` (rules in the module docstring)."""
    kind = AdapterKind(kind)
    data = copy.deepcopy(data)
    adapter = data.get("adapter", {})
    try:
        own = AdapterKind(adapter.get("kind", RunConfig().adapter.kind))
    except ValueError:
        raise ConfigError(f"preset adapter.kind {adapter.get('kind')!r} is not an adapter kind",
                          fix=f"use one of {', '.join(k.value for k in AdapterKind)}") from None
    optim = data.get("optim", {})
    if ADAPTER_BACKENDS[own] is not ADAPTER_BACKENDS[kind]:
        for key in _FAMILY_FIELDS[ADAPTER_BACKENDS[own]]:
            adapter.pop(key, None)
        if own is AdapterKind.FULL:
            optim.pop("lr", None)
    if kind is AdapterKind.FULL and own is not AdapterKind.FULL:
        adapter = {key: value for key, value in adapter.items() if key in _KEPT_FOR_FULL}
        if optim.get("optimizer", RunConfig().optim.optimizer.value) != OptimizerKind.PRODIGY.value:
            optim["lr"] = FULL_FINETUNE_LR
    adapter.pop("kind", None)
    if kind is not RunConfig().adapter.kind:
        adapter = {"kind": kind.value, **adapter}
    for table, value in (("adapter", adapter), ("optim", optim)):
        if value:
            data[table] = value
        else:
            data.pop(table, None)
    return data


def preset_for_adapter(name: str, kind: AdapterKind | str, *, folder: Path | None = None) -> dict:
    """The deltas of preset `name` (no description) adjusted for adapter `kind`."""
    source = f"preset {name}"
    data = migrate(strip_description(load_preset_data(name, folder=folder), source=source), source=source)
    return adapt_preset(data, kind)


def auto_preset(memory_gib: float | None) -> str:
    """The built-in preset for a GPU with this much memory; None (no GPU) picks quick_test."""
    if memory_gib is None:
        return "quick_test"
    for floor, name in ((24, "vram_24gb_plus"), (16, "vram_16gb"), (12, "vram_12gb")):
        if memory_gib >= floor:
            return name
    return "vram_8gb"


def detect_device_memory_gib(device: str = "auto") -> float | None:
    """Total memory of a CUDA device in GiB; None for CPU, MPS or when CUDA is not available."""
    import torch  # only here: reading a config must not need torch

    name = str(device)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}", fix="use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type != "cuda" or not torch.cuda.is_available():
        return None
    index = torch.cuda.current_device() if dev.index is None else dev.index
    if index >= torch.cuda.device_count():
        raise ConfigError(f"device {name!r} does not exist ({torch.cuda.device_count()} CUDA devices)",
                          fix="use cuda:0 .. cuda:N-1, or auto")
    return torch.cuda.get_device_properties(index).total_memory / 2**30


def _user_names(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(path.stem for path in folder.glob("*.toml") if _NAME.fullmatch(path.stem))
