"""A labelled song folder: scan it recursively, pair each audio file with its label files, merge by precedence.

Precedence per field (later wins): CSV row < `song.caption.txt` / `song.lyrics.txt` < `song.json`.
Only given values take part (an empty caption in `song.json` does not hide a CSV caption). Nothing is
invented: a song without labels gets an empty caption and empty lyrics (= instrumental).
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from acetune.audio import AUDIO_EXTENSIONS, file_problem
from acetune.data.captions import TagConfig, genre_indices, select_caption
from acetune.data.labels import SampleLabels, merge_labels
from acetune.data.prompts import build_lyric_text
from acetune.data.sidecars import (
    CsvRow,
    json_sidecar_path,
    read_json_sidecar,
    read_label_csv,
    read_text_sidecars,
)
from acetune.errors import LabelError

__all__ = ["Dataset", "DatasetSample", "Problem", "ScanResult", "TagConfig", "find_audio_files", "locate_audio",
           "scan_dataset"]


@dataclass(frozen=True)
class Problem:
    """A file the scan could not use, and why (the scan goes on without it)."""

    path: Path
    reason: str


@dataclass(frozen=True)
class DatasetSample:
    audio_path: Path
    relative: str  # posix path from the dataset root: the sample id
    labels: SampleLabels
    label_sources: tuple[Path, ...] = ()  # files the labels came from, lowest precedence first


@dataclass(frozen=True)
class Dataset:
    root: Path
    samples: tuple[DatasetSample, ...]
    tag: TagConfig = TagConfig()
    genre_ratio: int = 0  # percent of samples (seeded pick) that use their genre instead of the caption
    metadata: dict[str, Any] = field(default_factory=dict)  # dataset-level keys we do not interpret

    def __post_init__(self) -> None:
        ratio = self.genre_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, int) or not 0 <= ratio <= 100:
            raise LabelError(f"genre ratio must be a whole number from 0 to 100, got {ratio!r}", path=self.root,
                             fix="pass --genre-ratio between 0 and 100")

    def caption_texts(self) -> list[str]:
        """The `# Caption` text of every sample: caption or genre (genre ratio, seed 42), then the tag."""
        genre_set = genre_indices(len(self.samples), self.genre_ratio)
        return [select_caption(s.labels, i, genre_set, self.tag) for i, s in enumerate(self.samples)]

    def lyric_texts(self) -> list[str]:
        """The lyric-branch text of every sample (empty lyrics become "[Instrumental]")."""
        return [build_lyric_text(s.labels.lyrics, s.labels.language) for s in self.samples]

    def find(self, name: str | Path) -> DatasetSample:
        """The sample whose id (posix path from the root) or file path is `name`."""
        wanted = PurePosixPath(Path(name).as_posix()).as_posix()
        path = Path(name).resolve() if Path(name).exists() else None
        for sample in self.samples:
            if sample.relative == wanted or (path is not None and sample.audio_path.resolve() == path):
                return sample
        raise LabelError(f"{name} is not a sample of this dataset", path=self.root,
                         fix="name the file by its path inside the folder, as `acetune dataset list` shows it")


@dataclass(frozen=True)
class ScanResult:
    dataset: Dataset
    problems: list[Problem]


def find_audio_files(folder: Path | str) -> list[Path]:
    """Audio files under `folder` (suffix case-insensitive), recursively and sorted; hidden ones are skipped."""
    return _walk(Path(folder))[0]


def _walk(folder: Path, problems: list[Problem] | None = None) -> tuple[list[Path], list[Path]]:
    """Audio files and CSV files under `folder`, sorted by their posix path from it; hidden ones skipped.

    Links are followed (a folder link back to a folder already walked is not walked again). What is named
    like audio but cannot be read as a file (a dangling or looping link, a FIFO, a device, a folder) or
    whose path is not valid UTF-8 (a cache id must be text) goes to `problems`, never opened.
    """
    audio: list[Path] = []
    tables: list[Path] = []
    problems = [] if problems is None else problems
    walked: set[str] = set()  # real paths of the folders walked so far
    for parent, dirs, files in os.walk(folder, followlinks=True):
        walked.add(os.path.realpath(parent))
        dirs[:] = [d for d in sorted(dirs) if not d.startswith(".") and _walkable(Path(parent, d), walked, problems)]
        for name in sorted(files):
            if name.startswith("."):
                continue
            suffix = Path(name).suffix.lower()
            if suffix in AUDIO_EXTENSIONS:
                path = Path(parent, name)
                problem = file_problem(path) or _name_problem(path.relative_to(folder).as_posix())
                if problem is None:
                    audio.append(path)
                else:
                    problems.append(Problem(path, f"skipped: {problem}"))
            elif suffix == ".csv":
                tables.append(Path(parent, name))
    key = lambda p: p.relative_to(folder).as_posix()  # noqa: E731 - one sort order for both lists
    return sorted(audio, key=key), sorted(tables, key=key)


def _walkable(path: Path, walked: set[str], problems: list[Problem]) -> bool:
    """Whether the walk enters the folder `path`; a folder named like audio is walked but reported."""
    if path.suffix.lower() in AUDIO_EXTENSIONS:
        problems.append(Problem(path, "skipped: a folder, not an audio file (files inside it are still scanned)"))
    if os.path.realpath(path) in walked:
        problems.append(Problem(path, "skipped: a folder link to a folder already scanned (it would loop or "
                                      "read the same songs twice)"))
        return False
    return True


def _name_problem(relative: str) -> str | None:
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(relative).decode("utf-8", "backslashreplace")
        return f'its name "{shown}" is not valid UTF-8 text; rename the file'
    return None


def scan_dataset(folder: Path | str, *, tag: TagConfig = TagConfig(), genre_ratio: int = 0) -> ScanResult:
    """Scan a song folder. A label CSV with bad columns or duplicate rows, or a folder with no audio, is a
    `LabelError`; a song whose own labels are bad (or a CSV row naming a missing file) is a `Problem`."""
    root = Path(folder).resolve()
    if not root.is_dir():
        raise LabelError("dataset folder does not exist or is not a folder", path=folder,
                         fix="pass the folder that holds your songs")
    problems: list[Problem] = []
    audio, tables = _walk(root, problems)
    if not audio:
        raise LabelError(f"no audio files ({' '.join(AUDIO_EXTENSIONS)}) in this folder or below it", path=folder,
                         fix="put your songs in the folder (hidden files and folders are skipped)")
    usable = _drop_shared_stems(audio, problems)
    rows = _match_csv_rows(root, tables, audio, problems)
    samples = []
    for path in usable:
        try:
            labels, sources = _read_labels(path, rows.get(path))
        except LabelError as err:
            problems.append(Problem(path, f"skipped: {err}"))
            continue
        samples.append(DatasetSample(path, path.relative_to(root).as_posix(), labels, sources))
    return ScanResult(Dataset(root, tuple(samples), tag, genre_ratio), problems)


def locate_audio(root: Path | str, name: str | Path) -> Path:
    """An audio file inside `root`, named relative to it (or by a path that points inside it)."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise LabelError("dataset folder does not exist or is not a folder", path=root)
    candidates = [root / name, Path(name)]
    for candidate in candidates:
        if candidate.is_file():
            path = candidate.resolve()
            if not path.is_relative_to(root):
                raise LabelError(f"{name} is outside the dataset folder", path=root, fix="name a song inside it")
            if path.suffix.lower() not in AUDIO_EXTENSIONS:
                raise LabelError(f"{name} is not an audio file ({' '.join(AUDIO_EXTENSIONS)})", path=root,
                                 fix="name the song's audio file, not one of its label files")
            return path
    raise LabelError(f"no file {name} in the dataset folder", path=root,
                     fix="name the file by its path inside the folder, as `acetune dataset list` shows it")


def _read_labels(path: Path, row: CsvRow | None) -> tuple[SampleLabels, tuple[Path, ...]]:
    labels = row.labels() if row is not None else SampleLabels()
    sources: list[Path] = [row.csv_path] if row is not None else []
    text_labels, text_sources = read_text_sidecars(path)
    labels = merge_labels(labels, text_labels, overwrite=True)
    sources += text_sources
    sidecar = json_sidecar_path(path)
    if sidecar.is_file():
        labels = merge_labels(labels, read_json_sidecar(sidecar), overwrite=True)
        sources.append(sidecar)
    return labels, tuple(sources)


def _drop_shared_stems(audio: list[Path], problems: list[Problem]) -> list[Path]:
    """Two songs with one stem in one folder would share their label files: both become problems."""
    groups: dict[Path, list[Path]] = defaultdict(list)
    for path in audio:
        groups[path.with_suffix("")].append(path)
    usable = []
    for path in audio:
        group = groups[path.with_suffix("")]
        if len(group) == 1:
            usable.append(path)
        else:
            others = ", ".join(p.name for p in group if p != path)
            problems.append(Problem(path, f"skipped: shares its name stem with {others}, so their label files "
                                          "would be the same; fix: rename one of them"))
    return usable


def _match_csv_rows(root: Path, tables: list[Path], audio: list[Path],
                    problems: list[Problem]) -> dict[Path, CsvRow]:
    by_path = {os.path.normcase(str(p)): p for p in audio}
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for path in audio:
        by_stem[os.path.normcase(str(path.with_suffix("")))].append(path)
    matched: dict[Path, CsvRow] = {}
    for table in tables:
        for row in read_label_csv(table):
            target = os.path.normcase(os.path.normpath(table.parent / row.filename))
            found = [by_path[target]] if target in by_path else []
            if not found and Path(row.filename).suffix.lower() not in AUDIO_EXTENSIONS:
                found = by_stem.get(target, [])
            if len(found) != 1:
                why = "does not exist" if not found else f"matches {len(found)} files; add the extension"
                problems.append(Problem(table, f"row {row.line}: {row.filename!r} {why} (row ignored)"))
                continue
            if found[0] in matched:
                first = matched[found[0]]
                raise LabelError(f"{found[0].relative_to(root).as_posix()} is labelled twice: {first.source} "
                                 f"and {row.source}", path=table, fix="keep one row per file")
            matched[found[0]] = row
    return matched


# --- split and analyze: batch jobs over a scanned folder, reported as events ---------------------------------
