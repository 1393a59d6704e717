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
from pathlib import Path

from acetune.atomic import write_json_atomic
from acetune.data.labels import SampleLabels, label_conflicts, merge_labels
from acetune.data.song_txt import parse_song_txt
from acetune.errors import LabelError


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
    text = read_text_file(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise LabelError(f"sidecar is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}",
                         path=path, fix="repair the JSON or delete the file") from None
    return SampleLabels.from_dict(data, source=path, notes=notes)


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

    Values already in the sidecar survive unless `overwrite_fields`; unknown keys always survive."""
    path = json_sidecar_path(audio_path)
    existing = read_json_sidecar(path) if path.exists() else SampleLabels()
    write_json_atomic(path, merge_labels(existing, labels, overwrite=overwrite_fields).to_dict())
    return path


def replace_json_sidecar(audio_path: Path, labels: SampleLabels) -> Path:
    """Write exactly `labels` to `<stem>.json` (used by `edit`, which starts from the sidecar it read)."""
    path = json_sidecar_path(audio_path)
    write_json_atomic(path, labels.to_dict())
    return path


def sidecar_conflicts(audio_path: Path, labels: SampleLabels) -> list[str]:
    """Keys of `labels` whose value differs from one already in the audio's JSON sidecar."""
    path = json_sidecar_path(audio_path)
    return label_conflicts(read_json_sidecar(path), labels) if path.exists() else []


def read_text_file(path: Path) -> str:
    """A label file's text (UTF-8, a leading BOM dropped); other encodings are a `LabelError`."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise LabelError(f"file is not UTF-8 text ({err.reason})", path=path, fix="save it as UTF-8") from None
