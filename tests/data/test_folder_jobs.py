"""split_dataset / analyze_dataset as libraries: the events they yield are JSON-serialisable."""

from __future__ import annotations

import json

from acetune.audio import synthesize_song, write_audio
from acetune.data.dataset import scan_dataset
from acetune.data.folder_jobs import SplitWritten, split_dataset
from acetune.events import Finished, Progressed, Started


def test_split_events_and_names_with_glob_characters(tmp_path):
    rate = 16_000
    song = synthesize_song(seed=3, duration_s=2.0, bpm=90, sample_rate=rate)
    write_audio(tmp_path / "in" / "live [take 1].wav", song, rate)
    dataset = scan_dataset(tmp_path / "in").dataset
    events = list(split_dataset(dataset, tmp_path / "out", segment_s=1.0, min_segment_s=1.0))
    assert [type(e) for e in events] == [Started, SplitWritten, Progressed, Finished]
    assert json.loads(json.dumps([e.to_json() for e in events]))[1]["event"] == "SplitWritten"
    names = [p.rsplit("/", 1)[-1] for p in events[1].pieces]
    assert names == ["live [take 1]__part01.wav", "live [take 1]__part02.wav"]
    again = list(split_dataset(dataset, tmp_path / "out", segment_s=2.0, min_segment_s=1.0, overwrite=True))
    assert len(again[1].pieces) == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["live [take 1]__part01.json",
                                                                   "live [take 1]__part01.wav"]


def test_analyze_leaves_a_sidecar_it_cannot_write_back_alone(tmp_path):
    """A song.json whose language the scan reads as unknown (with a notice) is not rewritten: that song is
    skipped with the reason, the others are analyzed."""
    from acetune.data.folder_jobs import Analyzed, analyze_dataset
    from acetune.events import Skipped

    for seed, name in enumerate(("elvish", "plain")):
        write_audio(tmp_path / f"{name}.wav", synthesize_song(seed=seed, duration_s=4.0, bpm=120, key="C major"), 48000)
    sidecar = tmp_path / "elvish.json"
    sidecar.write_text(json.dumps({"caption": "x", "language": "Elvish"}))
    before = sidecar.read_text()
    events = list(analyze_dataset(scan_dataset(tmp_path).dataset))
    skipped = [e for e in events if isinstance(e, Skipped)]
    assert [e.path.name for e in skipped] == ["elvish.wav"] and "Elvish" in skipped[0].reason
    assert sidecar.read_text() == before
    assert [e.path.name for e in events if isinstance(e, Analyzed)] == ["plain.wav"]
