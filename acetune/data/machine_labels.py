"""Labels written by auto-labellers: where each value came from, which runs are done, and the merge rule.

A song's `song.json` records, beside the values:
- `label_sources`: field -> the labeller that wrote it, e.g. {"caption": "lm:acestep-5Hz-lm-1.7B"};
- `label_runs`: labeller -> fingerprint of its settings, so a rerun with the same ones skips the song.

The merge rule: a field the song has no value for (in any of its label files) is written; a value an
auto-labeller wrote earlier (its field is in `label_sources`) may be replaced by a new one; a value the user
wrote is replaced only with `overwrite`. `dataset edit` drops the source of a field it changes, so an edited
value counts as the user's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from acetune.atomic import write_json_atomic
from acetune.data.labels import SampleLabels, is_given
from acetune.data.sidecars import SOURCES_KEY, forget_sources, json_sidecar_path, read_json_sidecar

__all__ = ["RUNS_KEY", "SOURCES_KEY", "finished_runs", "forget_sources", "read_sidecar_or_empty", "value_sources",
           "writable", "write_machine_labels"]
RUNS_KEY = "label_runs"


def _text_map(labels: SampleLabels, key: str) -> dict[str, str]:
    """A {str: str} record kept in the sidecar's extra keys; anything else there is ignored (and kept)."""
    value = labels.extra.get(key)
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def value_sources(labels: SampleLabels) -> dict[str, str]:
    return _text_map(labels, SOURCES_KEY)


def finished_runs(labels: SampleLabels) -> dict[str, str]:
    return _text_map(labels, RUNS_KEY)


def read_sidecar_or_empty(audio_path: Path) -> SampleLabels:
    path = json_sidecar_path(audio_path)
    return read_json_sidecar(path) if path.exists() else SampleLabels()


def writable(name: str, current: SampleLabels, sidecar: SampleLabels, *, overwrite: bool) -> bool:
    """Whether a labeller may write field `name`, given the song's labels from all files (`current`)."""
    if overwrite or not is_given(name, getattr(current, name)):
        return name != "lyrics" or overwrite or current.is_instrumental is not True
    machine_made = name in value_sources(sidecar) and getattr(sidecar, name) == getattr(current, name)
    return machine_made


def write_machine_labels(audio_path: Path, values: Mapping[str, Any], sources: Mapping[str, str],
                         runs: Mapping[str, str]) -> Path:
    """Merge values (with their sources) and finished runs into the song's JSON sidecar, atomically.

    Everything else in the sidecar (other fields, unknown keys) is kept as it is."""
    path = json_sidecar_path(audio_path)
    sidecar = read_sidecar_or_empty(audio_path)
    data = {**sidecar.to_dict(), **values}
    data[SOURCES_KEY] = {**value_sources(sidecar), **sources}
    data[RUNS_KEY] = {**finished_runs(sidecar), **runs}
    if not data[SOURCES_KEY]:
        del data[SOURCES_KEY]
    labels = SampleLabels.from_dict(data, source=path)  # a value that would not read back is refused here
    write_json_atomic(path, labels.to_dict())
    return path
