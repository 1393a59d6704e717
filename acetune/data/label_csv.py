"""Label CSVs: acetune's own, the ACE-Step app's and ace-lora-trainer's, read by one reader.

A `*.csv` file labels songs in its own folder (and below). The formats it reads:
- acetune: `filename` plus label columns (`caption, genre, bpm, keyscale, timesignature, lyrics, language`, …).
- The ACE-Step app (acestep/training/dataset_builder_modules/csv_metadata.py in ace-step/ACE-Step-1.5): a
  `File` column (any case) naming the audio file, and `BPM`, `Key`, `Caption`; the delimiter is sniffed among
  `,` `;` TAB; UTF-8 with or without a BOM.
- ace-lora-trainer's captioner (captioner_standalone.py in Estylon/ace-lora-trainer): the columns
  `filename, path, caption, bpm, keyscale, timesignature, duration, genre, language` (and `lyrics`), where
  `path` is the absolute path of the audio on the machine that labelled it.

Column names are case-insensitive; `key` → `keyscale`, `signature`/`time_signature` → `timesignature`,
`vocal_language` → `language`, `trigger` → `custom_tag` (`labels.TABLE_ALIASES`). Any other column is kept
as an extra field of each song's labels, with one note per CSV. Empty cells mean "not given".

Which song a row labels: its `filename` (or `File`) cell; only a row without one uses its `path` cell. The
cell is read as a path (posix or Windows) and tried in turn:
1. an absolute path to a song inside the dataset folder: that song;
2. relative to the CSV's folder (an absolute path from the labeller's machine: by its file name); without
   an extension it matches the song with that stem;
3. the one song below the CSV's folder with that file name (the ACE-Step app matches by file name alone).
A row that matches no song, or several, is a listed problem and is ignored.
"""

from __future__ import annotations

import csv
import io
import os
from collections import defaultdict
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Any

from acetune.audio import AUDIO_EXTENSIONS
from acetune.data.findings import Problem
from acetune.data.labels import TABLE_ALIASES, SampleLabels
from acetune.data.sidecars import TABLE_MAX_BYTES, read_text_file
from acetune.errors import LabelError, echoed

NAME_COLUMNS = ("filename", "file")  # acetune / ace-lora-trainer, the ACE-Step app
PATH_COLUMN = "path"  # ace-lora-trainer: the absolute path where the song was labelled
LABEL_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(SampleLabels) if f.name != "extra")
DELIMITERS = ",;\t"  # what the ACE-Step app sniffs among
_SNIFF_CHARS = 8192


@dataclass(frozen=True)
class CsvRow:
    """One data row of a label CSV; `line` is the 1-based line where the row starts (the header is line 1)."""

    csv_path: Path
    line: int
    filename: str  # the name cell, or the path cell when the row has no name
    values: dict[str, str]  # given cells only, aliases resolved; unknown columns included

    @property
    def source(self) -> str:
        return f"{self.csv_path}, row {self.line}"

    def labels(self, notes: list[str] | None = None) -> SampleLabels:
        return SampleLabels.from_dict(self.values, source=self.source, notes=notes)

    def pure_path(self) -> PurePath:
        """The row's file as a path of the system it was written on (Windows or posix)."""
        name = self.filename
        is_windows = "\\" in name or (len(name) > 2 and name[1] == ":" and name[0].isalpha())
        return PureWindowsPath(name) if is_windows else PurePosixPath(name)


@dataclass(frozen=True)
class LabelCsv:
    path: Path
    rows: list[CsvRow]
    notes: list[str] = field(default_factory=list)  # things worth telling the user, once per CSV


def read_label_csv(path: Path) -> LabelCsv:
    """Rows of a label CSV. A CSV with no file column, a column named twice, a row with more cells than the
    header, or a song labelled twice is a `LabelError` naming the CSV."""
    text = read_text_file(path, max_bytes=TABLE_MAX_BYTES)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text))
    try:
        return _read_rows(path, reader)
    except csv.Error as err:  # a NUL byte, a cell past csv.field_size_limit(): not a label table
        raise LabelError(f"label CSV cannot be read at line {reader.line_num} ({err})", path=path,
                         fix="repair the CSV (cells of plain text, each under 128 KiB) or move it out of the "
                             "song folder") from None


def _read_rows(path: Path, reader: Any) -> LabelCsv:
    header = next(reader, None)
    if header is None:
        raise LabelError("label CSV is empty", path=path, fix="add a header row (filename,caption,...) or delete it")
    columns = _columns(header, path)
    notes = []
    extra = [h.strip() for h, c in zip(header, columns) if c not in LABEL_COLUMNS + NAME_COLUMNS + (PATH_COLUMN,)]
    if extra:
        names = f"columns {', '.join(map(echoed, extra))} are not labels" if len(extra) > 1 else \
            f"column {echoed(extra[0])} is not a label"
        notes.append(f"{names} acetune uses: kept as extra fields of each song (they do not change "
                     "training)")
    rows: list[CsvRow] = []
    first_line: dict[str, int] = {}
    start = reader.line_num + 1
    for cells in reader:
        line, start = start, reader.line_num + 1  # a quoted cell may span lines: report where the row starts
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(columns):
            raise LabelError(f"row {line} has {len(cells)} cells but the header has {len(columns)}", path=path,
                             fix="quote cells that contain the delimiter")
        row = _row(path, line, {c: v.strip() for c, v in zip(columns, cells) if v.strip()})
        if row.filename in first_line:
            raise LabelError(f"{echoed(row.filename)} is labelled twice, in rows {first_line[row.filename]} and {line}",
                             path=path, fix="keep one row per file")
        first_line[row.filename] = line
        rows.append(row)
    return LabelCsv(path, rows, notes)


def _sniff_delimiter(text: str) -> str:
    """`,` `;` or TAB, as csv.Sniffer finds it in the header line (plain column names in every format read
    here; the data rows can mislead it: a long quoted lyrics cell of "oh, baby, oh" lines looks comma-
    separated), then in the start of the file; a comma when neither says."""
    for sample in (text.split("\n", 1)[0], text[:_SNIFF_CHARS]):
        try:
            return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
        except csv.Error:
            continue
    return ","


def _columns(header: list[str], path: Path) -> list[str]:
    columns = [h.strip().lower() for h in header]
    columns = [TABLE_ALIASES.get(c, c) for c in columns]
    doubled = sorted({c for c in columns if c and columns.count(c) > 1})
    if doubled:
        raise LabelError(f"label CSV names column(s) {', '.join(doubled)} more than once", path=path,
                         fix="keep one column each (key and keyscale, File and filename are the same column)")
    if "file" in columns and "filename" in columns:
        raise LabelError("label CSV has both a File and a filename column", path=path, fix="keep one of them")
    if not any(c in columns for c in NAME_COLUMNS + (PATH_COLUMN,)):
        raise LabelError("label CSV has no filename, File or path column", path=path,
                         fix="add a filename column naming each song, or move the CSV out of the song folder")
    return columns


def _row(path: Path, line: int, record: dict[str, str]) -> CsvRow:
    name = next((record.pop(c) for c in NAME_COLUMNS if c in record), "")
    location = record.pop(PATH_COLUMN, "")
    if not name and not location:
        raise LabelError(f"row {line} names no file", path=path, fix="fill in the filename cell")
    return CsvRow(path, line, name or location, record)


def match_csv_rows(root: Path, tables: list[LabelCsv], audio: list[Path]) -> tuple[dict[Path, CsvRow], list[Problem]]:
    """The row labelling each song (see the module docstring), and the rows that match no song or several.
    A song labelled by two rows (in one CSV or two) is a `LabelError`."""
    finder = _SongFinder(root, audio)
    matched: dict[Path, CsvRow] = {}
    problems: list[Problem] = []
    for table in tables:
        for row in table.rows:
            found = finder.find(table.path.parent, row)
            if len(found) != 1:
                why = "does not exist" if not found else f"matches {len(found)} songs; write its path"
                problems.append(Problem(table.path, f"row {row.line}: {echoed(row.filename)} {why} (row ignored)"))
                continue
            if found[0] in matched:
                first = matched[found[0]]
                raise LabelError(f"{found[0].relative_to(root).as_posix()} is labelled twice: {first.source} "
                                 f"and {row.source}", path=table.path, fix="keep one row per file")
            matched[found[0]] = row
    return matched, problems


class _SongFinder:
    """Songs by path, by path without extension, and by file name (all case-normalised as the OS does)."""

    def __init__(self, root: Path, audio: list[Path]):
        self.root = root
        self.by_path = {_key(p): p for p in audio}
        self.by_stem: dict[str, list[Path]] = defaultdict(list)
        self.by_name: dict[str, list[Path]] = defaultdict(list)
        for path in audio:
            self.by_stem[_key(path.with_suffix(""))].append(path)
            self.by_name[os.path.normcase(path.name)].append(path)

    def find(self, folder: Path, row: CsvRow) -> list[Path]:
        pure = row.pure_path()
        own = Path(row.filename)
        if own.is_absolute() and _key(own) in self.by_path:
            return [self.by_path[_key(own)]]
        target = folder / pure.name if pure.is_absolute() else folder.joinpath(*pure.parts)
        if _key(target) in self.by_path:
            return [self.by_path[_key(target)]]
        if pure.suffix.lower() not in AUDIO_EXTENSIONS and self.by_stem.get(_key(target)):
            return self.by_stem[_key(target)]
        return [p for p in self.by_name.get(os.path.normcase(pure.name), []) if p.is_relative_to(folder)]


def _key(path: Path) -> str:
    return os.path.normcase(os.path.normpath(path))
