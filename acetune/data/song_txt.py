"""`song.txt` beside a song: Side-Step's key-value sidecar ("Option A") or the ACE-Step app's plain lyrics.

Two tools write a `<stem>.txt`, told apart here by content:
- Side-Step ("Option A", koda-dernet/Side-Step sidestep_engine/data/sidecar_io.py): lines `caption: …`,
  `genre: …`, `bpm: …`, `key: …`, `signature: …`, any other `key: value` lines (`custom_tag`/`trigger`,
  `is_instrumental`, `prompt_override`, `repeat`, …), then a `lyrics:` line; the lyrics run to the end of the
  file. Side-Step's own reader also continues a value on the lines that follow it.
- The ACE-Step app (acestep/training/dataset_builder_modules/audio_io.py, `load_lyrics_file`): the whole
  file is the song's lyrics (it reads `<stem>.lyrics.txt` first and `<stem>.txt` as the legacy name).

The rule: the header is the run of `key: value` lines at the top of the file, up to a `lyrics:` line. A
file whose header has a `caption:` key, or ends at a `lyrics:` line, is Option A; anything else is plain
lyrics, so lyrics lines such as `[Verse 1]` or `Love: it hurts` never turn a lyrics file into labels. In the
header a line that is not `key: value` continues the value above it, except a line starting with `[` (a
lyrics section marker): it ends the header. An Option A file with text after its header that is not under a
`lyrics:` line is an error (its lyrics would otherwise be lost).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from acetune.data.labels import TABLE_ALIASES
from acetune.errors import LabelError, echoed

_KEY_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_-]*)\s*:(.*)$")

SongTxtKind = Literal["side-step", "lyrics"]


@dataclass(frozen=True)
class SongTxt:
    """The parsed file: its kind and the label values it holds (keys lower-cased, aliases resolved)."""

    kind: SongTxtKind
    values: dict[str, str]


def parse_song_txt(text: str, *, source: Path | str | None = None) -> SongTxt:
    """Parse the text of a `song.txt` (the module docstring says how the two kinds are told apart). An
    Option A file with text after its labels but no `lyrics:` line, or with one key given twice with
    different values, is a `LabelError` naming `source`."""
    lines = text.splitlines()
    pairs, end = _header(lines)
    has_lyrics_line = end < len(lines) and _key(lines[end]) == "lyrics"
    if not has_lyrics_line and not any(key == "caption" for key, _ in pairs):
        return SongTxt("lyrics", {"lyrics": text.strip()})
    if not has_lyrics_line and end < len(lines):
        raise LabelError(f"line {end + 1} ({echoed(lines[end].strip(), 40)}) comes after the labels, but no "
                         "'lyrics:' line comes before it", path=source,
                         fix="write 'lyrics:' on a line of its own above the lyrics")
    values: dict[str, str] = {}
    for key, value in pairs:
        name = TABLE_ALIASES.get(key, key)
        if name in values and values[name] != value:
            raise LabelError(f"{name} is given twice ({echoed(values[name])} and {echoed(value)})", path=source,
                             fix="keep one line for it (key and keyscale, signature and timesignature are one)")
        values[name] = value
    if has_lyrics_line:
        first = lines[end].split(":", 1)[1]
        values["lyrics"] = "\n".join([first, *lines[end + 1:]]).strip()
    return SongTxt("side-step", values)


def _key(line: str) -> str | None:
    match = _KEY_LINE.match(line)
    return None if match is None else match.group(1).lower()


def _header(lines: list[str]) -> tuple[list[tuple[str, str]], int]:
    """The `key: value` pairs at the top of the file, and the index of the first line after them: a
    `lyrics:` line, a section marker (`[...]`), text before any key, or the end of the file."""
    pairs: list[tuple[str, list[str]]] = []
    end = len(lines)
    for number, line in enumerate(lines):
        key = _key(line)
        if key == "lyrics" or (key is None and line.strip() and (not pairs or line.lstrip().startswith("["))):
            end = number
            break
        if key is not None:
            pairs.append((key, [line.split(":", 1)[1]]))
        elif pairs:
            pairs[-1][1].append(line)  # a blank line or a continuation of the value above
    return [(key, "\n".join(part.strip() for part in parts).strip()) for key, parts in pairs], end
