"""Label files beside the audio: `song.json`, `song.txt`, `song.caption.txt` + `song.lyrics.txt`.

- `song.json` is a JSON object in the `SampleLabels` format (unknown keys are kept).
- `song.txt` is Side-Step's key-value sidecar or the ACE-Step app's plain lyrics (see `song_txt`).
- `song.caption.txt` / `song.lyrics.txt` hold plain text; surrounding whitespace is stripped.
Label CSVs are read by `label_csv`. Writes (only ever to `song.json`) are atomic (temp file + os.replace) and
merge with what is already there.

Readers take an optional `notes` list: a language value that names no ACE-Step language is noted there and
read as "unknown" (see `labels`); without it, it is a `LabelError`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from acetune.atomic import write_json_atomic
from acetune.data.labels import SampleLabels, label_conflicts, merge_labels
from acetune.data.song_txt import parse_song_txt
from acetune.errors import LabelError

# Size caps. One song's label file holds a caption and lyrics: a few KB, tens of KB for the longest rap
# lyrics; 1 MiB is 20 times that and still reads in a blink. A CSV or dataset JSON labels a whole folder:
# 64 MiB is thousands of songs with full lyrics. Past these, a file is not labels (a misnamed audio or
# model file, or a hostile one) and is refused before it is read.
SIDECAR_MAX_BYTES = 1 << 20
TABLE_MAX_BYTES = 64 << 20
# Labels are a flat object; kept extra keys may hold a small nested record. Deeper is not labels (and
# Python's JSON reader itself fails near 1000 levels).
JSON_MAX_DEPTH = 32
SOURCES_KEY = "label_sources"  # field -> the auto-labeller that wrote it (see `machine_labels`)


def json_sidecar_path(audio_path: Path) -> Path:
    return audio_path.with_suffix(".json")


def caption_txt_path(audio_path: Path) -> Path:
    return audio_path.with_name(f"{audio_path.stem}.caption.txt")


def lyrics_txt_path(audio_path: Path) -> Path:
    return audio_path.with_name(f"{audio_path.stem}.lyrics.txt")


def song_txt_path(audio_path: Path) -> Path:
    return audio_path.with_suffix(".txt")


def read_json_sidecar(path: Path, notes: list[str] | None = None) -> SampleLabels:
    """Parse a `song.json` sidecar; malformed JSON, a non-object or a wrong type is a `LabelError`."""
    return SampleLabels.from_dict(parse_label_json(read_text_file(path), path, "sidecar"), source=path, notes=notes)


def read_song_txt(path: Path, notes: list[str] | None = None) -> SampleLabels:
    """Labels from a `song.txt`: Side-Step's key-value sidecar or plain lyrics (see `song_txt`)."""
    return SampleLabels.from_dict(parse_song_txt(read_text_file(path), source=path).values, source=path, notes=notes)


def read_text_sidecars(audio_path: Path) -> tuple[SampleLabels, tuple[Path, ...]]:
    """Caption and lyrics from `<stem>.caption.txt` / `<stem>.lyrics.txt`, and the files that existed."""
    values: dict[str, str] = {}
    found: list[Path] = []
    for key, path in (("caption", caption_txt_path(audio_path)), ("lyrics", lyrics_txt_path(audio_path))):
        if path.is_file():
            values[key] = read_text_file(path).strip()
            found.append(path)
    return SampleLabels.from_dict(values, source=found[0] if found else audio_path), tuple(found)


def write_json_sidecar(audio_path: Path, labels: SampleLabels, *, overwrite_fields: bool) -> Path:
    """Merge `labels` into `<stem>.json` beside the audio (created if missing) and return its path.

    Values already in the sidecar survive unless `overwrite_fields`; unknown keys always survive. A value
    written here is no longer an auto-labeller's (its `label_sources` entry is dropped)."""
    path = json_sidecar_path(audio_path)
    existing = read_json_sidecar(path) if path.exists() else SampleLabels()
    merged = merge_labels(existing, labels, overwrite=overwrite_fields)
    changed = {n for n in labels.given_fields() if getattr(merged, n) != getattr(existing, n)}
    write_json_atomic(path, forget_sources(merged, changed).to_dict())
    return path


def forget_sources(labels: SampleLabels, names: Iterable[str]) -> SampleLabels:
    """`labels` without the auto-labeller recorded as the source of `names` (someone else just wrote them;
    see `machine_labels`)."""
    sources = labels.extra.get(SOURCES_KEY)
    names = set(names)
    if not isinstance(sources, dict) or not names & set(sources):
        return labels
    extra = dict(labels.extra)
    kept = {k: v for k, v in sources.items() if k not in names}
    if kept:
        extra[SOURCES_KEY] = kept
    else:
        del extra[SOURCES_KEY]
    return replace(labels, extra=extra)


def replace_json_sidecar(audio_path: Path, labels: SampleLabels) -> Path:
    """Write exactly `labels` to `<stem>.json` (used by `edit`, which starts from the sidecar it read)."""
    path = json_sidecar_path(audio_path)
    write_json_atomic(path, labels.to_dict())
    return path


def sidecar_conflicts(audio_path: Path, labels: SampleLabels) -> list[str]:
    """Keys of `labels` whose value differs from one already in the audio's JSON sidecar."""
    path = json_sidecar_path(audio_path)
    return label_conflicts(read_json_sidecar(path), labels) if path.exists() else []


def read_text_file(path: Path, *, max_bytes: int = SIDECAR_MAX_BYTES) -> str:
    """A label file's text (UTF-8, a leading BOM dropped). A file over `max_bytes`, one that cannot be read
    and one in another encoding are each a `LabelError`: the song is listed as a problem, the scan goes on."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                raise LabelError(f"file is {_mib(size)}, larger than a label file may be ({_mib(max_bytes)})",
                                 path=path, fix="check that this is the right file; labels take a few KB")
            return handle.read()
    except UnicodeDecodeError as err:
        raise LabelError(f"file is not UTF-8 text ({err.reason})", path=path, fix="save it as UTF-8") from None
    except OSError as err:
        raise LabelError(f"file cannot be read ({err.strerror or err})", path=path,
                         fix="check the file's permissions") from None


def parse_label_json(text: str, path: Path, what: str) -> Any:
    """JSON text of a label file. Invalid JSON, nesting deeper than `JSON_MAX_DEPTH` and numbers longer than
    Python converts (4300 digits: `sys.get_int_max_str_digits`) are each a `LabelError` naming `what`."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise LabelError(f"{what} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}",
                         path=path, fix="repair the JSON or delete the file") from None
    except RecursionError:
        raise _too_deep(path, what) from None
    except ValueError:  # int() refused a number's digit string
        raise LabelError(f"{what} holds a number of more than {sys.get_int_max_str_digits()} digits", path=path,
                         fix="repair the JSON: no label is a number that long") from None
    if _depth(data) > JSON_MAX_DEPTH:
        raise _too_deep(path, what)
    return data


def _too_deep(path: Path, what: str) -> LabelError:
    return LabelError(f"{what} nests lists or objects more than {JSON_MAX_DEPTH} levels deep", path=path,
                      fix="repair the JSON: labels are a flat object of text and numbers")


def _depth(data: Any) -> int:
    """How many lists/objects deep `data` nests (0 for a plain value); stops counting past `JSON_MAX_DEPTH`."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, (dict, list)):
            deepest = max(deepest, level)
            if level > JSON_MAX_DEPTH:
                break
            stack.extend((item, level + 1) for item in (value.values() if isinstance(value, dict) else value))
    return deepest


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.0f} KiB"


def update_json_sidecar(audio_path: Path, changes: dict[str, Any], unset: tuple[str, ...] = ()) -> Path:
    """Set `changes` and remove `unset` keys in the audio's `song.json` (created if missing), atomically.

    Every other key in the file, known or not, is kept as it was; the values are checked as any label file's."""
    path = json_sidecar_path(audio_path)
    current = read_json_sidecar(path) if path.exists() else SampleLabels()
    data = {**current.to_dict(), **changes}
    for key in unset:
        data.pop(key, None)
    return replace_json_sidecar(audio_path, SampleLabels.from_dict(data, source=path))
