"""The Songs page's work: the folder's songs with their labels, sources and problems; edits; the prompt preview.

Everything here goes through the dataset API the CLI uses (`scan_dataset`, the sidecar writers,
`sample_texts`), so the table is `acetune dataset list`, an edit is `acetune dataset edit`, and
the preview is the exact text `acetune preprocess` caches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from acetune.data.captions import TagConfig, genre_indices, select_caption
from acetune.data.dataset import ScanResult, scan_dataset
from acetune.data.labels import SampleLabels
from acetune.data.machine_labels import value_sources
from acetune.data.sidecars import update_json_sidecar

# the labels the page edits: field name -> column header
EDITABLE = {"caption": "caption", "lyrics": "lyrics", "genre": "genre", "bpm": "bpm", "keyscale": "key",
            "timesignature": "time sig.", "language": "language"}
HEADERS = ["file", *EDITABLE.values(), "label sources", "auto-labelled", "problem"]


@dataclass(frozen=True)
class SongTable:
    root: Path
    rows: list[list[str]]  # one per file: HEADERS
    notices: list[str]  # about songs that are used

    @property
    def files(self) -> list[str]:
        return [row[0] for row in self.rows if not row[-1]]


def song_table(folder: Path) -> SongTable:
    """Every audio file of the folder: labels and where they came from, or the problem that keeps it out."""
    result = scan_dataset(folder)
    root = result.dataset.root
    rows = []
    for sample in result.dataset.samples:
        labels = sample.labels.to_dict(full=True)
        values = ["" if labels[key] in (None, "unknown") else str(labels[key]) for key in EDITABLE]
        sources = ", ".join(_inside(p, root) for p in sample.label_sources) or "-"
        rows.append([sample.relative, *values, sources, machine_sources(sample.labels), ""])
    for problem in result.problems:
        rows.append([_inside(problem.path, root), *([""] * len(EDITABLE)), "-", "", problem.reason])
    notices = [f"{_inside(n.path, root)}: {n.text}" for n in result.notices + result.dataset.uncaptioned()]
    return SongTable(root, rows, notices)


def machine_sources(labels: SampleLabels) -> str:
    """Which auto-labeller wrote which field (`acetune dataset label`), e.g. "caption: lm:acestep-5Hz-lm-1.7B"."""
    return ", ".join(f"{field}: {source}" for field, source in value_sources(labels).items())


def _inside(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def song_labels(folder: Path, file: str) -> SampleLabels:
    return _scan(folder).dataset.find(file).labels


def save_song(folder: Path, file: str, values: dict[str, str]) -> Path | None:
    """Write the fields the user changed into the song's `song.json` (other keys in it are kept).

    A field left as the merged labels already have it is not written, so a caption from a CSV or a
    caption.txt stays there; a field emptied is removed from `song.json`. Values are read as the
    sidecar reads them (bpm "120" is 120; "fast" is an error naming the file). None: nothing changed."""
    sample = _scan(folder).dataset.find(file)
    current = sample.labels.to_dict(full=True)
    changes, unset = {}, []
    for key, text in values.items():
        text = text.strip()
        shown = "" if current[key] in (None, "unknown") else str(current[key])
        if text == shown:
            continue
        if text:
            changes[key] = text
        else:
            unset.append(key)
    if not changes and not unset:
        return None
    return update_json_sidecar(sample.audio_path, changes, tuple(unset))


def prompt_preview(folder: Path, file: str, tag: str, position: str, genre_ratio: int = 0) -> str:
    """The caption prompt and lyric text this song trains on with this activation tag, as the cache stores them."""
    from acetune.data.preprocess import sample_texts  # imports torch: only when a preview is asked for

    dataset = _scan(folder).dataset
    sample = dataset.find(file)
    index = dataset.samples.index(sample)
    genre_set = genre_indices(len(dataset.samples), genre_ratio)
    prompt, lyrics = sample_texts(sample, select_caption(sample.labels, index, genre_set, TagConfig(tag, position)))
    return f"{prompt}\n{lyrics}"


def audio_path(folder: Path, file: str) -> Path:
    return _scan(folder).dataset.find(file).audio_path


def _scan(folder: Path) -> ScanResult:
    return scan_dataset(folder)
