"""song.txt: Side-Step's key-value sidecar ("Option A") against the ACE-Step app's plain lyrics, by content."""

from __future__ import annotations

import pytest

from acetune.data.song_txt import parse_song_txt
from acetune.errors import LabelError

SIDE_STEP = """caption: dreamy synthpop, female vocal
genre: synthpop
bpm: 118
key: F# minor
signature: 4
custom_tag: zx
is_instrumental: false
lyrics:
[Verse 1]
Love: it hurts
caption: this line is lyrics

[Chorus]
oh oh
"""


def test_side_step_file_maps_keys_and_keeps_everything_after_lyrics():
    parsed = parse_song_txt(SIDE_STEP)
    assert parsed.kind == "side-step"
    assert parsed.values == {
        "caption": "dreamy synthpop, female vocal", "genre": "synthpop", "bpm": "118", "keyscale": "F# minor",
        "timesignature": "4", "custom_tag": "zx", "is_instrumental": "false",
        "lyrics": "[Verse 1]\nLove: it hurts\ncaption: this line is lyrics\n\n[Chorus]\noh oh",
    }


@pytest.mark.parametrize("text", [
    "[Verse 1]\nLove: it hurts\ncaption: late, but lyrics\n",  # first line is no key
    "Love: it hurts\nBaby: don't go\n",  # key-value lines, but neither caption nor lyrics
    "Love: it hurts\n[Chorus]\nlyrics: la la\n",  # a section marker ends the header before lyrics:
    "walking down the street\nlyrics: not a key here\n",
])
def test_lyrics_that_look_like_keys_stay_lyrics(text):
    parsed = parse_song_txt(text)
    assert parsed.kind == "lyrics" and parsed.values == {"lyrics": text.strip()}


def test_header_variants():
    assert parse_song_txt("genre: rock\nlyrics: first line\nsecond").values == \
        {"genre": "rock", "lyrics": "first line\nsecond"}  # lyrics alone (no caption) is Option A too
    assert parse_song_txt("caption: a long\n  caption\n\nbpm:\nTrigger: t\n").values == \
        {"caption": "a long\ncaption", "bpm": "", "custom_tag": "t"}  # continuation lines; no lyrics line
    assert parse_song_txt("\n\nCAPTION: x\nTime_Signature: 6/8\nlyrics:").values == \
        {"caption": "x", "timesignature": "6/8", "lyrics": ""}
    assert parse_song_txt("").values == {"lyrics": ""}


def test_malformed_side_step_files_name_the_file():
    with pytest.raises(LabelError, match=r"line 2 \('\[Verse\]'\) comes after the labels") as err:
        parse_song_txt("caption: x\n[Verse]\nla la\n", source="songs/a.txt")
    assert "songs/a.txt" in str(err.value) and "fix:" in str(err.value)
    with pytest.raises(LabelError, match="keyscale is given twice"):
        parse_song_txt("caption: x\nkey: C major\nkeyscale: D major\nlyrics:\n", source="a.txt")
    assert parse_song_txt("caption: x\nkey: C major\nkeyscale: C major\n").values["keyscale"] == "C major"
