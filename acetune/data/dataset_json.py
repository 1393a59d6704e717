"""The dataset JSON of the ACE-Step app and Side-Step: `{"metadata": {...}, "samples": [...]}`.

Import accepts that object, `{"samples": [...]}` alone, or a bare list of samples. A sample's audio is
found from `audio_path` (relative paths resolve against the JSON's folder), falling back to `filename`.
Unknown sample and metadata keys are kept, so import -> export gives them back. Export writes absolute
`audio_path`s and an 8-character `id` derived from the sample's path inside the dataset folder (ids in an
imported file are not kept: they are recomputed).

The activation tag: both tools build each song's prompt from the sample's own `custom_tag` and write the
dataset tag into every sample (the ACE-Step app's scan sets `sample.custom_tag = metadata.custom_tag`;
Side-Step's build_dataset writes `"custom_tag": tag` per sample, koda-dernet/Side-Step
acestep/training_v2/dataset_builder.py). So export writes the song's own tag, else the dataset tag, into
every sample, and import reads a sample tag equal to `metadata.custom_tag` as the dataset's, not the song's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from acetune.data.captions import TAG_POSITIONS, TagConfig
from acetune.data.dataset import Dataset, DatasetSample, Notice, Problem, ScanResult, find_audio_files, scan_dataset
from acetune.data.labels import SampleLabels, label_conflicts
from acetune.data.prompts import INSTRUMENTAL_LYRICS
from acetune.atomic import write_json_atomic
from acetune.data.sidecars import (TABLE_MAX_BYTES, json_sidecar_path, parse_label_json, read_json_sidecar,
                                   read_text_file, write_json_sidecar)
from acetune.errors import LabelError, echoed

_LOCATION_KEYS = ("id", "audio_path", "filename")  # where the audio is; recomputed on export
_DERIVED_METADATA = ("num_samples", "all_instrumental")  # recomputed on export
_TAG_METADATA = ("custom_tag", "tag_position", "genre_ratio")  # become Dataset.tag / genre_ratio


@dataclass(frozen=True)
class ImportReport:
    written: list[Path]  # JSON sidecars written or updated
    problems: list[Problem]
    dataset: Dataset  # as read from the JSON: its tag and genre ratio are not stored in the folder
    notices: list[Notice] = field(default_factory=list)


def sample_id(relative: str) -> str:
    """A stable 8-character id for a sample path (hex of its SHA-1)."""
    return hashlib.sha1(relative.encode("utf-8")).hexdigest()[:8]


def read_dataset_json(path: Path | str, *, audio_root: Path | str | None = None) -> ScanResult:
    """Load a dataset JSON. With `audio_root`, audio is also looked for there (by `audio_path`, `filename`,
    then a unique file name anywhere below it) and must lie inside it; the dataset's root is `audio_root`,
    otherwise the JSON's folder. A sample with bad labels or no audio file is a `Problem`."""
    path = Path(path).resolve()
    samples_data, metadata = _split_document(_load(path), path)
    root = Path(audio_root).resolve() if audio_root is not None else path.parent
    by_name: dict[str, list[Path]] = {}
    if audio_root is not None:
        for audio in find_audio_files(root):
            by_name.setdefault(audio.name, []).append(audio)
    tag, ratio, extra = _parse_metadata(metadata, path)
    samples: list[DatasetSample] = []
    problems: list[Problem] = []
    notices: list[Notice] = []
    seen: dict[Path, int] = {}
    for number, entry in enumerate(samples_data, start=1):
        where = f"{path}, sample {number}"
        notes: list[str] = []
        try:
            audio = _locate(entry, path.parent, root if audio_root is not None else None, by_name, where)
            labels = SampleLabels.from_dict({k: v for k, v in entry.items() if k not in _LOCATION_KEYS},
                                            source=where, notes=notes)
        except LabelError as err:
            fix = f"; fix: {err.fix}" if err.fix else ""
            problems.append(Problem(path, f"sample {number} skipped: {err.what}{fix}"))
            continue
        if audio in seen:
            problems.append(Problem(path, f"sample {number} skipped: {audio} is already sample {seen[audio]}"))
            continue
        seen[audio] = number
        notices += [Notice(path, f"sample {number}: {note}") for note in notes]
        if tag.tag and labels.custom_tag == tag.tag:
            labels = replace(labels, custom_tag="")  # the dataset tag, written into every sample
        relative = audio.relative_to(root).as_posix() if audio.is_relative_to(root) else audio.as_posix()
        samples.append(DatasetSample(audio, relative, labels, (path,)))
    return ScanResult(Dataset(root, tuple(samples), tag, ratio, extra), problems, notices)


def dataset_to_json(dataset: Dataset) -> dict[str, Any]:
    """The dataset as an app/Side-Step dataset JSON document (every sample carries its activation tag)."""
    samples = [_sample_to_json(s, dataset.tag.tag) for s in dataset.samples]
    metadata = {
        "name": dataset.root.name,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **dataset.metadata,
        "custom_tag": dataset.tag.tag,
        "tag_position": dataset.tag.position,
        "genre_ratio": dataset.genre_ratio,
        "num_samples": len(samples),
        "all_instrumental": bool(samples) and all(s["is_instrumental"] for s in samples),
    }
    return {"metadata": metadata, "samples": samples}


def write_dataset_json(dataset: Dataset, out: Path | str, *, overwrite: bool = False) -> Path:
    """Export `dataset` to `out` atomically; an existing file is replaced only with `overwrite`."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise LabelError("file already exists", path=out, fix="pass --overwrite or choose another file name")
    write_json_atomic(out, dataset_to_json(dataset))
    return out


def import_dataset_json(path: Path | str, folder: Path | str, *, overwrite: bool = False) -> ImportReport:
    """Write the labels of a dataset JSON into `song.json` sidecars beside the songs in `folder`.

    A value that differs from one the song already has (in any of its label files) is a `LabelError`
    listing every such value, and nothing is written, unless `overwrite`."""
    imported = read_dataset_json(path, audio_root=folder)
    current = {s.audio_path: s.labels for s in scan_dataset(folder).dataset.samples}
    conflicts = []
    for sample in imported.dataset.samples:
        keys = label_conflicts(current.get(sample.audio_path, SampleLabels()), sample.labels)
        if keys:
            conflicts.append(f"{sample.relative}: {', '.join(keys)}")
    if conflicts and not overwrite:
        shown = "; ".join(conflicts[:10]) + (f"; and {len(conflicts) - 10} more" if len(conflicts) > 10 else "")
        raise LabelError(f"the JSON would change labels the songs already have ({shown})", path=Path(path),
                         fix="pass --overwrite to replace them, or edit the JSON")
    for sample in imported.dataset.samples:  # every sidecar that will be merged must read, before the first write
        if json_sidecar_path(sample.audio_path).exists():
            read_json_sidecar(json_sidecar_path(sample.audio_path))
    written = [write_json_sidecar(s.audio_path, s.labels, overwrite_fields=overwrite)
               for s in imported.dataset.samples]
    return ImportReport(written, imported.problems, imported.dataset, imported.notices)


def _sample_to_json(sample: DatasetSample, dataset_tag: str) -> dict[str, Any]:
    labels = sample.labels
    location = {"id": sample_id(sample.relative), "audio_path": str(sample.audio_path),
                "filename": sample.audio_path.name}
    data: dict[str, Any] = {**location, **labels.to_dict(full=True), **location}  # an extra key never moves it
    data["custom_tag"] = labels.custom_tag or dataset_tag
    if labels.is_instrumental is None:
        data["is_instrumental"] = labels.lyrics.strip() in ("", INSTRUMENTAL_LYRICS)
    data.setdefault("labeled", bool(labels.caption.strip() or labels.genre.strip()))
    return data


def _load(path: Path) -> Any:
    if not path.is_file():
        raise LabelError("dataset JSON not found", path=path, fix="check the path")
    return parse_label_json(read_text_file(path, max_bytes=TABLE_MAX_BYTES), path, "dataset JSON")


def _split_document(data: Any, path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    if isinstance(data, list):
        samples, metadata = data, {}
    elif isinstance(data, dict) and isinstance(data.get("samples"), list):
        samples, metadata = data["samples"], data.get("metadata") or {}
        others = sorted(set(data) - {"samples", "metadata"})
        if others:
            raise LabelError(f"dataset JSON has unknown top-level key(s) {', '.join(others)}", path=path,
                             fix="keep only metadata and samples")
    else:
        raise LabelError("dataset JSON must be a list of samples or an object with a samples list", path=path,
                         fix='write {"metadata": {...}, "samples": [...]}')
    if not isinstance(metadata, dict):
        raise LabelError("metadata must be an object", path=path, fix='write "metadata": {...}')
    for number, entry in enumerate(samples, start=1):
        if not isinstance(entry, dict):
            raise LabelError(f"sample {number} is not an object", path=path, fix="write each sample as {...}")
    return samples, metadata


def _locate(entry: dict[str, Any], json_dir: Path, root: Path | None, by_name: dict[str, list[Path]],
            where: str) -> Path:
    audio_path, filename = entry.get("audio_path"), entry.get("filename")
    for key, value in (("audio_path", audio_path), ("filename", filename)):
        if value is not None and not isinstance(value, str):
            raise LabelError(f"{key} must be a string", path=where)
    if not audio_path and not filename:
        raise LabelError("sample has neither audio_path nor filename", path=where, fix="add audio_path")
    candidates = []
    for value in (audio_path, filename):
        if value:
            bases = [json_dir] if root is None else [root, json_dir]
            candidates += [Path(value)] if Path(value).is_absolute() else [base / value for base in bases]
    same_name = by_name.get(Path(filename or audio_path).name, [])
    if len(same_name) == 1:  # the song moved inside the folder: a unique file name still finds it
        candidates.append(same_name[0])
    for candidate in candidates:
        if candidate.is_file():
            found = candidate.resolve()
            if root is not None and not found.is_relative_to(root):
                continue
            return found
    inside = f" inside {root}" if root is not None else ""
    raise LabelError(f"audio file {echoed(audio_path or filename)} not found{inside}", path=where,
                     fix="put the song beside the JSON or in the folder, or correct audio_path")


def _parse_metadata(metadata: dict[str, Any], path: Path) -> tuple[TagConfig, int, dict[str, Any]]:
    tag = metadata.get("custom_tag") or ""
    position = metadata.get("tag_position") or "prepend"
    ratio = metadata.get("genre_ratio", 0)
    if not isinstance(tag, str):
        raise LabelError("metadata.custom_tag must be a string", path=path)
    if position not in TAG_POSITIONS:
        raise LabelError(f"metadata.tag_position is {echoed(position)}", path=path,
                         fix=f"use one of {', '.join(TAG_POSITIONS)}")
    if ratio is None:
        ratio = 0
    if isinstance(ratio, float) and ratio.is_integer():
        ratio = int(ratio)
    if isinstance(ratio, bool) or not isinstance(ratio, int) or not 0 <= ratio <= 100:
        raise LabelError(f"metadata.genre_ratio is {echoed(ratio)}", path=path, fix="use a whole number from 0 to 100")
    extra = {k: v for k, v in metadata.items() if k not in _TAG_METADATA and k not in _DERIVED_METADATA}
    return TagConfig(tag, position), ratio, extra
