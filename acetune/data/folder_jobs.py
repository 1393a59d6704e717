"""Jobs over a song folder that write files: split long songs into pieces, analyze and label them.

Both yield events (front ends render them) and never modify the user's audio; `split` writes
only into its output folder and `analyze` only merges into label sidecars.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from acetune.audio import analyze_audio, load_audio, split_waveform, write_audio
from acetune.data.dataset import Dataset
from acetune.data.labels import SampleLabels, is_given, parse_timesignature
from acetune.atomic import write_json_atomic
from acetune.data.sidecars import json_sidecar_path, write_json_sidecar
from acetune.errors import AudioError, LabelError
from acetune.events import Event, Finished, Progressed, Skipped, Started


@dataclass(frozen=True)
class SplitWritten(Event):
    path: Path  # the source song
    pieces: tuple[str, ...]  # audio files written (each with a `.json` sidecar)


@dataclass(frozen=True)
class Analyzed(Event):
    path: Path
    estimates: dict[str, Any]  # bpm, keyscale, timesignature, duration as found (None: not found)
    written: tuple[str, ...]  # keys written to the song's JSON sidecar


def split_dataset(dataset: Dataset, out: Path | str, *, segment_s: float, min_segment_s: float = 10.0,
                  overwrite: bool = False) -> Iterator[Event]:
    """Cut every song into `segment_s` pieces at 48 kHz: `out/<relative stem>__part01.wav` (.flac for flac input)
    with a JSON sidecar holding the song's labels and the piece's duration. Never writes into the dataset."""
    if not 0 < min_segment_s <= segment_s:
        raise ValueError(f"need 0 < min_segment_s <= segment_s, got {min_segment_s} and {segment_s}")
    out = Path(out).resolve()
    targets = {s.relative: out / PurePosixPath(s.relative).parent / Path(s.relative).stem for s in dataset.samples}
    for stem in targets.values():
        if stem.parent.is_relative_to(dataset.root):
            raise LabelError("the output folder would put pieces inside the dataset folder", path=out,
                             fix="choose an output folder outside the songs folder")
    old = [p for stem in targets.values() for p in sorted(stem.parent.glob(f"{glob.escape(stem.name)}__part*"))
           if p.is_file()]
    if old and not overwrite:
        raise LabelError(f"{len(old)} piece file(s) from an earlier split are already there, e.g. {old[0]}", path=out,
                         fix="pass --overwrite to replace them, or choose another output folder")
    for path in old:
        path.unlink()
    yield Started("split", len(dataset.samples))
    written = skipped = 0
    for done, sample in enumerate(dataset.samples, start=1):
        try:
            audio = load_audio(sample.audio_path, max_duration_s=None)
        except AudioError as err:
            skipped += 1
            yield Skipped(sample.audio_path, err.what)
            continue
        pieces = split_waveform(audio.waveform, audio.sample_rate, segment_s, min_segment_s)
        if not pieces:
            skipped += 1
            yield Skipped(sample.audio_path, f"shorter than the minimum piece of {min_segment_s:g} s")
            continue
        suffix = ".flac" if sample.audio_path.suffix.lower() == ".flac" else ".wav"
        width = max(2, len(str(len(pieces))))
        paths = []
        for number, piece in enumerate(pieces, start=1):
            target = Path(f"{targets[sample.relative]}__part{number:0{width}d}{suffix}")
            write_audio(target, np.ascontiguousarray(piece), audio.sample_rate, overwrite=overwrite)
            labels = replace(sample.labels, duration=int(piece.shape[1] / audio.sample_rate))
            write_json_atomic(json_sidecar_path(target), labels.to_dict())
            paths.append(str(target))
        written += len(paths)
        yield SplitWritten(sample.audio_path, tuple(paths))
        yield Progressed(done, len(dataset.samples), sample.relative)
    yield Finished("split", "complete", {"pieces": written, "skipped": skipped, "out": str(out)})


def analyze_dataset(dataset: Dataset, *, overwrite: bool = False) -> Iterator[Event]:
    """Estimate bpm, key, time signature and duration of every song and merge them into its JSON sidecar.

    A field the song already has (from any label file) is kept unless `overwrite`. Unreadable audio is
    `Skipped`; an `AudioError` is raised at the end only when no song could be analyzed."""
    yield Started("analyze", len(dataset.samples))
    analyzed = 0
    for done, sample in enumerate(dataset.samples, start=1):
        try:
            audio = load_audio(sample.audio_path, max_duration_s=None)
        except AudioError as err:
            yield Skipped(sample.audio_path, err.what)
            continue
        found = analyze_audio(audio.waveform, audio.sample_rate)
        estimates = {"bpm": found.bpm, "keyscale": found.keyscale,
                     "timesignature": parse_timesignature(found.timesignature),
                     "duration": int(audio.source_duration_s)}
        written = tuple(k for k, v in estimates.items()
                        if is_given(k, v) and (overwrite or not is_given(k, getattr(sample.labels, k))))
        if written:
            update = SampleLabels(**{k: estimates[k] for k in written})
            try:
                write_json_sidecar(sample.audio_path, update, overwrite_fields=True)
            except LabelError as err:  # a value we cannot write back unchanged: leave the user's file alone
                yield Skipped(sample.audio_path, f"not written: {err}")
                continue
        analyzed += 1
        yield Analyzed(sample.audio_path, estimates, written)
        yield Progressed(done, len(dataset.samples), sample.relative)
    summary = {"analyzed": analyzed, "skipped": len(dataset.samples) - analyzed}
    yield Finished("analyze", "complete" if analyzed else "failed", summary)
    if analyzed == 0:
        raise AudioError("no song in the folder could be analyzed (see the skipped files above)", path=dataset.root,
                         fix="re-encode the listed files as .wav or .flac")
