"""A labelled song folder: scan it recursively, pair each audio file with its label files, merge by precedence.

Precedence per field (later wins): CSV row < `song.txt` < `song.caption.txt` / `song.lyrics.txt` < `song.json`.
- A CSV labels many songs at once, often written by a captioner for the whole folder: the most general
  source, so any file of the song's own says more.
- `song.txt` (Side-Step's key-value sidecar, or the ACE-Step app's plain lyrics) is the song's own, but
  the app itself reads `song.lyrics.txt` before `song.txt`: the single-purpose files beat it.
- `song.json` is where `acetune dataset edit` and `analyze` write, so an edit always takes effect.
(The ACE-Step app applies its CSV last, over `song.json`; acetune does not: a table for the whole folder
must not undo a value set for one song.) Only given values take part (an empty caption in `song.json` does
not hide a CSV caption). Nothing is invented: a song without labels gets an empty caption and empty lyrics
(= instrumental), and `Dataset.uncaptioned` lists it.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from acetune.audio import AUDIO_EXTENSIONS, file_problem
from acetune.data.captions import TagConfig, genre_indices, select_caption
from acetune.data.findings import Notice, Problem, shown_caption
from acetune.data.label_csv import CsvRow, LabelCsv, match_csv_rows, read_label_csv
from acetune.data.labels import SampleLabels, merge_labels
from acetune.data.prompts import build_lyric_text
from acetune.data.sidecars import json_sidecar_path, read_json_sidecar, read_song_txt, read_text_sidecars, song_txt_path
from acetune.errors import LabelError, echoed

__all__ = ["Dataset", "DatasetSample", "Notice", "Problem", "ScanResult", "TagConfig", "find_audio_files",
           "locate_audio", "scan_dataset"]


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

    def uncaptioned(self) -> list[Notice]:
        """A notice for each song whose `# Caption` text holds neither a caption nor a genre: it would train on
        the activation tag (if any) and the metas alone. Nothing to say when the tag replaces every caption."""
        if self.tag.position == "replace":
            return []
        genre_set = genre_indices(len(self.samples), self.genre_ratio)
        notices = []
        for index, sample in enumerate(self.samples):
            untagged = select_caption(replace(sample.labels, custom_tag=""), index, genre_set, TagConfig())
            if untagged.strip():
                continue
            prompt = select_caption(sample.labels, index, genre_set, self.tag)
            unused = f" (its genre {echoed(sample.labels.genre)} is used only with --genre-ratio or prompt_override " \
                     "genre)" if sample.labels.genre else " or genre"
            notices.append(Notice(sample.audio_path, f"no caption{unused}: it would train on "
                                                     f"{shown_caption(prompt)} and the metas alone; fix: add a "
                                                     "caption (song.json, song.txt, song.caption.txt or a label CSV)"))
        return notices

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
    problems: list[Problem]  # files not used
    notices: list[Notice] = field(default_factory=list)  # about files used (see also Dataset.uncaptioned)


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
    """Scan a song folder. A label CSV with no file column or duplicate rows, or a folder with no audio, is a
    `LabelError`; a song whose own labels are bad (or a CSV row naming no song) is a `Problem`; a language
    read as unknown or CSV columns kept as extra fields are `Notice`s."""
    root = Path(folder).resolve()
    if not root.is_dir():
        raise LabelError("dataset folder does not exist or is not a folder", path=folder,
                         fix="pass the folder that holds your songs")
    problems: list[Problem] = []
    audio, table_paths = _walk(root, problems)
    if not audio:
        raise LabelError(f"no audio files ({' '.join(AUDIO_EXTENSIONS)}) in this folder or below it", path=folder,
                         fix="put your songs in the folder (hidden files and folders are skipped)")
    usable = _drop_shared_stems(audio, problems)
    tables: list[LabelCsv] = [read_label_csv(path) for path in table_paths]
    notices = [Notice(table.path, note) for table in tables for note in table.notes]
    rows, unmatched = match_csv_rows(root, tables, audio)
    problems += unmatched
    samples = []
    for path in usable:
        try:
            labels, sources, notes = _read_labels(path, rows.get(path))
        except LabelError as err:
            problems.append(Problem(path, f"skipped: {err}"))
            continue
        notices += notes
        samples.append(DatasetSample(path, path.relative_to(root).as_posix(), labels, sources))
    return ScanResult(Dataset(root, tuple(samples), tag, genre_ratio), problems, notices)


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


_Layer = tuple[SampleLabels, list[Path], list[Notice]]  # one source's labels, its files, notices about it


def _read_labels(path: Path, row: CsvRow | None) -> tuple[SampleLabels, tuple[Path, ...], list[Notice]]:
    """The song's labels merged by precedence (module docstring), their files, and notices about them."""
    layers: list[_Layer] = []
    if row is not None:
        notes: list[str] = []
        row_labels = row.labels(notes)
        layers.append((row_labels, [row.csv_path], [Notice(row.csv_path, f"row {row.line}: {n}") for n in notes]))
    if song_txt_path(path).is_file():
        layers.append(_layer(song_txt_path(path), read_song_txt))
    text_labels, text_sources = read_text_sidecars(path)
    layers.append((text_labels, list(text_sources), []))
    if json_sidecar_path(path).is_file():
        layers.append(_layer(json_sidecar_path(path), read_json_sidecar))
    labels = SampleLabels()
    for layer, _, _ in layers:
        labels = merge_labels(labels, layer, overwrite=True)
    return labels, tuple(f for _, files, _ in layers for f in files), [n for _, _, notices in layers for n in notices]


def _layer(source: Path, read: Callable[[Path, list[str]], SampleLabels]) -> _Layer:
    notes: list[str] = []
    labels = read(source, notes)
    return labels, [source], [Notice(source, note) for note in notes]


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


# --- split and analyze: batch jobs over a scanned folder, reported as events ---------------------------------
