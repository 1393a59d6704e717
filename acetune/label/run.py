"""`label_dataset`: run auto-labellers over every song of a folder and merge their answers into `song.json`.

Resumable: each labeller's settings fingerprint is recorded per song (`label_runs`), and a song already done
by the same labeller and settings is not described again. A song a labeller cannot describe is reported
(`Skipped`, with the reason) and the run goes on; nothing is recorded for it, so a rerun tries it again.
What may be written is decided by `data.machine_labels.writable` (user values survive unless `overwrite`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from acetune.data.dataset import Dataset, DatasetSample
from acetune.data.machine_labels import finished_runs, read_sidecar_or_empty, writable, write_machine_labels
from acetune.errors import AcetuneError
from acetune.events import Event, Finished, Progressed, Skipped, Started
from acetune.label.base import Labeller, Proposal, settings_digest
from acetune.label.fields import DEFAULT_FIELDS

# Which labeller's value wins when several propose one: Whisper hears the words; the LM only invents lyrics
# that fit the music (upstream's own documentation says so). Fields not listed: the order of --with.
PRECEDENCE: dict[str, tuple[str, ...]] = {"lyrics": ("whisper", "lm"), "language": ("whisper", "lm"),
                                          "is_instrumental": ("whisper", "lm")}


@dataclass(frozen=True)
class LabellerReady(Event):
    kind: str
    source: str
    detail: str  # which model and why (e.g. the memory estimate)


@dataclass(frozen=True)
class Labelled(Event):
    path: Path
    written: dict[str, object]  # field -> value written (in a dry run: would be written)
    sources: dict[str, str]  # field -> labeller
    kept: tuple[str, ...] = ()  # fields proposed but left as the user wrote them
    notes: tuple[str, ...] = ()  # values dropped as invalid
    dry_run: bool = False


@dataclass(frozen=True)
class AlreadyLabelled(Event):
    path: Path
    sources: tuple[str, ...] = field(default_factory=tuple)


def label_dataset(dataset: Dataset, labellers: Sequence[Labeller], *, fields: Sequence[str] = DEFAULT_FIELDS,
                  overwrite: bool = False, dry_run: bool = False) -> Iterator[Event]:
    """Describe every song with `labellers` and merge the answers into its sidecar; yields events."""
    total = len(dataset.samples)
    counts = {"labelled": 0, "already": 0, "failed": 0}
    yield Started("label", total)
    for done, sample in enumerate(dataset.samples, start=1):
        outcome = None
        for event in _label_song(sample, labellers, tuple(fields), overwrite, dry_run):
            outcome = event
            yield event
        key = {Labelled: "labelled", AlreadyLabelled: "already"}.get(type(outcome), "failed")
        counts[key] += 1
        yield Progressed(done, total, sample.relative)
    reason = "failed" if total and counts["failed"] == total else "complete"
    usage = {k: v for lab in labellers if hasattr(lab, "summary") for k, v in lab.summary().items()}
    yield Finished("label", reason, {**counts, "dry run": dry_run, **usage})


def _label_song(sample: DatasetSample, labellers: Sequence[Labeller], fields: tuple[str, ...], overwrite: bool,
                dry_run: bool) -> Iterator[Event]:
    path = sample.audio_path
    try:
        sidecar = read_sidecar_or_empty(path)
    except AcetuneError as err:
        yield Skipped(path, reason(err))
        return
    digests = {lab.source: settings_digest(lab.source, {**lab.settings, "fields": fields, "overwrite": overwrite})
               for lab in labellers}
    done = finished_runs(sidecar)
    todo = [lab for lab in labellers if done.get(lab.source) != digests[lab.source]]
    if not todo:
        yield AlreadyLabelled(path, tuple(digests))
        return
    proposals: dict[str, Proposal] = {}
    for lab in todo:
        try:
            proposals[lab.kind] = lab.propose(path)
        except AcetuneError as err:
            yield Skipped(path, f"{lab.kind}: {reason(err)}")
    if not proposals:
        return
    chosen, sources = _combine(proposals, {lab.kind: lab.source for lab in todo}, fields)
    written = {k: v for k, v in chosen.items() if writable(k, sample.labels, sidecar, overwrite=overwrite)}
    runs = {lab.source: digests[lab.source] for lab in todo if lab.kind in proposals}
    if not dry_run:
        try:
            write_machine_labels(path, written, {k: sources[k] for k in written}, runs)
        except AcetuneError as err:
            yield Skipped(path, f"not written: {reason(err)}")
            return
    notes = tuple(note for p in proposals.values() for note in p.notes)
    yield Labelled(path, written, {k: sources[k] for k in written}, tuple(k for k in chosen if k not in written),
                   notes, dry_run)


def _combine(proposals: dict[str, Proposal], source_of: dict[str, str],
             fields: tuple[str, ...]) -> tuple[dict[str, object], dict[str, str]]:
    """One value per requested field: the first labeller (by `PRECEDENCE`, then --with order) that has one."""
    order = list(proposals)
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for name in fields:
        preferred = PRECEDENCE.get(name, ())
        ranked = sorted(order, key=lambda kind: preferred.index(kind) if kind in preferred else len(preferred))
        for kind in ranked:
            if name in proposals[kind].values:
                values[name], sources[name] = proposals[kind].values[name], source_of[kind]
                break
    return values, sources


def reason(err: AcetuneError) -> str:
    """The error's text and fix without its path (the event names the song already)."""
    return err.what if err.fix is None else f"{err.what}; fix: {err.fix}"
