"""The label fields an auto-labeller may write, and the checks a machine-made value must pass.

A labeller's answer is a guess: a value outside what ACE-Step knows is dropped with a note, never written.
The allowed values are the upstream ones (ace-step/ACE-Step-1.5 `acestep/constants.py`): bpm 30..300, time
signatures 2, 3, 4 and 6 beats per bar, keys as a tonic (A..G with #, b, ♯ or ♭) plus major or minor, and the
50 vocal-language codes (our `data.languages`). Keys are stored in one spelling per pitch class (the one
`acetune dataset analyze` writes), so "D♭ Major" and "C# major" both become "C# major".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from acetune.data.languages import read_language

# Every field `acetune dataset label` can write, in the order they are listed.
LABEL_FIELDS: tuple[str, ...] = ("caption", "genre", "lyrics", "bpm", "keyscale", "timesignature", "language",
                                 "is_instrumental")
DEFAULT_FIELDS: tuple[str, ...] = LABEL_FIELDS

BPM_RANGE = (30, 300)  # upstream BPM_MIN / BPM_MAX
TIME_SIGNATURES = ("2", "3", "4", "6")  # upstream VALID_TIME_SIGNATURES
INSTRUMENTAL_LYRICS = "[Instrumental]"  # how ACE-Step writes "no vocals" as lyrics (model.md §7.2)

_SPELLING = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")  # as audio/analysis.py writes keys
_NATURALS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_KEY = re.compile(r"^\s*([A-Ga-g])\s*([#b♯♭]?)\s*(major|minor|maj|min)\s*$", re.IGNORECASE)
_INT = re.compile(r"^\s*(\d{1,4})(?:\.0*)?\s*$")
_TIMESIG = re.compile(r"^\s*(\d{1,2})\s*(?:/\s*\d{1,2})?\s*$")


@dataclass(frozen=True)
class CheckedValues:
    """Values fit to write, and one line per value that was dropped (field, what it was, why)."""

    values: dict[str, object] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()


def parse_fields(text: str | None) -> tuple[str, ...]:
    """`--fields caption,bpm` -> ("caption", "bpm"); None or "" means every field. Unknown names raise."""
    from acetune.errors import ConfigError

    if not text:
        return DEFAULT_FIELDS
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in LABEL_FIELDS]
    if unknown or not names:
        raise ConfigError(f"--fields names unknown field(s): {', '.join(unknown) or '(none)'}",
                          fix=f"use a comma-separated list of: {','.join(LABEL_FIELDS)}")
    return names


def normalize_key(text: str) -> str | None:
    """"d♭ Major" -> "C# major"; None when the text is not one of the 24 keys."""
    match = _KEY.match(text)
    if match is None:
        return None
    letter, accidental, mode = match.group(1).upper(), match.group(2), match.group(3).lower()
    shift = {"#": 1, "♯": 1, "b": -1, "♭": -1}.get(accidental, 0)
    pitch = (_NATURALS[letter] + shift) % 12
    return f"{_SPELLING[pitch]} {'major' if mode.startswith('maj') else 'minor'}"


def check_values(raw: Mapping[str, object]) -> CheckedValues:
    """Clean a labeller's raw answer: text trimmed, numbers and keys checked; anything else is dropped."""
    values: dict[str, object] = {}
    dropped: list[str] = []
    for name, value in raw.items():
        checked, reason = _check(name, value)
        if reason is not None:
            dropped.append(f"{name} {str(value)[:60]!r} dropped: {reason}")
        elif checked is not None:
            values[name] = checked
    return CheckedValues(values, tuple(dropped))


def _check(name: str, value: object) -> tuple[object | None, str | None]:
    """(clean value or None for "nothing said", reason when the value is refused)."""
    if name == "is_instrumental":
        return (value, None) if isinstance(value, bool) else (None, "not true or false")
    if name not in LABEL_FIELDS:
        return None, "not a label field"
    text = str(value).strip()
    if not text or text.upper() == "N/A":
        return None, None
    if name in ("caption", "genre", "lyrics"):
        return text, None
    if name == "bpm":
        match = _INT.match(text)
        if match is None or not BPM_RANGE[0] <= int(match.group(1)) <= BPM_RANGE[1]:
            return None, f"not a whole bpm in {BPM_RANGE[0]}..{BPM_RANGE[1]}"
        return int(match.group(1)), None
    if name == "keyscale":
        key = normalize_key(text)
        return (key, None) if key else (None, "not one of the 24 major/minor keys")
    if name == "timesignature":
        match = _TIMESIG.match(text)
        beats = str(int(match.group(1))) if match else None
        return (beats, None) if beats in TIME_SIGNATURES else (None, f"not {', '.join(TIME_SIGNATURES)} beats per bar")
    reading = read_language(text)  # language
    if not reading.recognised:
        return None, "not one of ACE-Step's 50 language codes"
    return (None if reading.code == "unknown" else reading.code), None
