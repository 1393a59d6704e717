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
