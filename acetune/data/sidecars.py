"""Label files beside the audio: `song.json`, `song.caption.txt` + `song.lyrics.txt`, and label CSVs.

- `song.json` is a JSON object in the `SampleLabels` format (unknown keys are kept).
- `song.caption.txt` / `song.lyrics.txt` hold plain text; surrounding whitespace is stripped.
- A `*.csv` file labels the songs in its own folder. Columns: `filename` (required; the file name, or a path
  relative to the CSV's folder; without an extension it matches the song with that stem) and any of
  `CSV_COLUMNS`. The column `key` is accepted as an alias of `keyscale`. Empty cells mean "not given".
Writes are atomic (temp file + os.replace) and merge with what is already there.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from acetune.atomic import write_json_atomic
from acetune.data.labels import SampleLabels, label_conflicts, merge_labels
from acetune.errors import LabelError

CSV_COLUMNS: tuple[str, ...] = (
    "filename", "caption", "genre", "bpm", "keyscale", "timesignature", "lyrics", "language",
)
CSV_ALIASES = {"key": "keyscale"}


@dataclass(frozen=True)
class CsvRow:
    """One data row of a label CSV; `line` is the 1-based line number (the header is line 1)."""

    csv_path: Path
    line: int
    filename: str
    values: dict[str, str]  # given cells only, aliases resolved

    @property
    def source(self) -> str:
        return f"{self.csv_path}, row {self.line}"

    def labels(self) -> SampleLabels:
        return SampleLabels.from_dict(self.values, source=self.source)


def json_sidecar_path(audio_path: Path) -> Path:
    return audio_path.with_suffix(".json")


def caption_txt_path(audio_path: Path) -> Path:
    return audio_path.with_name(f"{audio_path.stem}.caption.txt")


def lyrics_txt_path(audio_path: Path) -> Path:
    return audio_path.with_name(f"{audio_path.stem}.lyrics.txt")


def read_json_sidecar(path: Path) -> SampleLabels:
    """Parse a `song.json` sidecar; malformed JSON, a non-object or a wrong type is a `LabelError`."""
    text = _read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise LabelError(f"sidecar is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}",
                         path=path, fix="repair the JSON or delete the file") from None
    return SampleLabels.from_dict(data, source=path)


def read_text_sidecars(audio_path: Path) -> tuple[SampleLabels, tuple[Path, ...]]:
    """Caption and lyrics from `<stem>.caption.txt` / `<stem>.lyrics.txt`, and the files that existed."""
    values: dict[str, str] = {}
    found: list[Path] = []
    for key, path in (("caption", caption_txt_path(audio_path)), ("lyrics", lyrics_txt_path(audio_path))):
        if path.is_file():
            values[key] = _read_text(path).strip()
            found.append(path)
    return SampleLabels.from_dict(values, source=found[0] if found else audio_path), tuple(found)


def read_label_csv(path: Path) -> list[CsvRow]:
    """Rows of a label CSV. Unknown or missing columns and duplicate filenames are `LabelError`s."""
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise LabelError("label CSV is empty", path=path, fix="add a header row (filename,caption,...) or delete it")
    columns = [CSV_ALIASES.get(h.strip().lower(), h.strip().lower()) for h in header]
    unknown = [h for h, c in zip(header, columns) if c not in CSV_COLUMNS]
    if unknown:
        raise LabelError(f"label CSV has unknown column(s) {', '.join(map(repr, unknown))}", path=path,
                         fix=f"use only {', '.join(CSV_COLUMNS)} (or key for keyscale); "
                             "move other CSV files out of the folder")
    doubled = sorted({c for c in columns if columns.count(c) > 1})
    if doubled:
        raise LabelError(f"label CSV names column(s) {', '.join(doubled)} more than once", path=path,
                         fix="keep one column each (key and keyscale are the same column)")
    if "filename" not in columns:
        raise LabelError("label CSV has no filename column", path=path, fix="add a filename column naming each song")
    rows: list[CsvRow] = []
    first_line: dict[str, int] = {}
    start = reader.line_num + 1
    for cells in reader:
        line, start = start, reader.line_num + 1  # a quoted cell may span lines: report where the row starts
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(columns):
            raise LabelError(f"row {line} has {len(cells)} cells but the header has {len(columns)}", path=path,
                             fix="quote cells that contain commas")
        record = {c: v.strip() for c, v in zip(columns, cells) if v.strip()}
        name = record.pop("filename", "")
        if not name:
            raise LabelError(f"row {line} has no filename", path=path, fix="fill in the filename cell")
        if name in first_line:
            raise LabelError(f"{name!r} is labelled twice, in rows {first_line[name]} and {line}", path=path,
                             fix="keep one row per file")
        first_line[name] = line
        rows.append(CsvRow(path, line, name, record))
    return rows


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


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise LabelError(f"file is not UTF-8 text ({err.reason})", path=path, fix="save it as UTF-8") from None
