"""The demo's songs: a handful of short synthesized pieces with caption sidecars (`acetune demo`, the web app).

Different tempi and keys, so `dataset analyze` has something to find; bpm and key are left out
of the sidecars on purpose.
"""

from __future__ import annotations

import json
from pathlib import Path

DEMO_SONGS = (  # file, bpm, key, seconds, caption
    ("sunrise_pop.wav", 120, "C major", 8.0, "bright synth pop, punchy drums, warm bass"),
    ("rainy_ballad.flac", 76, "A minor", 8.0, "slow melancholic piano ballad"),
    ("night_drive.wav", 100, "F# minor", 8.0, "moody synthwave, steady kick"),
    ("garden_waltz.flac", 90, "G major", 8.0, "gentle acoustic waltz"),
    ("city_funk.wav", 112, "Bb major", 8.0, "funky groove with slap bass"),
    ("storm_rock.wav", 140, "E minor", 8.0, "driving rock beat, distorted power chords"),
)
DEMO_TAG = "acetune-demo"


def write_demo_songs(folder: Path) -> list[Path]:
    """Synthesize the demo songs with caption sidecars (bpm/key are left for `analyze` to find)."""
    from acetune.audio import synthesize_song, write_audio

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed, (name, bpm, key, seconds, caption) in enumerate(DEMO_SONGS):
        path = folder / name
        write_audio(path, synthesize_song(seed=seed, duration_s=seconds, bpm=bpm, key=key), 48000)
        (folder / f"{path.stem}.json").write_text(json.dumps({"caption": caption, "language": "en"}) + "\n")
        paths.append(path)
    return paths
