"""Per-song labels: one typed record, strict parsing from JSON-like dicts, and merging by precedence.

Type coercion, decided once for every source (JSON sidecar, CSV cell, dataset JSON, `--set`):
- `bpm`, `duration`: an int, a float with no fractional part (120.0), or a string holding one ("120",
  " 120 ", "120.0"). Anything else (120.5, "fast", true) is a `LabelError`: we never round silently.
- `timesignature`: beats per bar as ACE-Step writes it ("4"). "4/4", "6/8" and the int 4 are accepted and
  stored as the numerator ("4", "6").
- `bpm`, `duration`, `timesignature`, `keyscale`: "N/A" (how ACE-Step's metas write "unknown") means not given.
- `language`: an ACE-Step code, or a value `languages.read_language` maps without doubt ("EN", "English";
  "instrumental" gives language unknown and `is_instrumental` true unless the record says otherwise). Any
  other value is a `LabelError`, or, when the caller passes a `notes` list, a note there and "unknown":
  labels made by other tools are read, never dropped, for a language we cannot place. The alias key
  `vocal_language` is accepted.
- `is_instrumental`: a bool, or the strings "true"/"false" (also "yes"/"no"/"1"/"0", as Side-Step reads
  them); null means not known.
- text fields: a string; null counts as "". Empty strings and nulls mean "not given".
Unknown keys are kept verbatim in `extra` and written back out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from acetune.data.languages import LANGUAGES, read_language
from acetune.errors import LabelError, echoed

__all__ = ["KEY_ALIASES", "LANGUAGES", "PROMPT_OVERRIDES", "TABLE_ALIASES", "SampleLabels", "is_given",
           "label_conflicts", "merge_labels", "parse_timesignature"]

PROMPT_OVERRIDES: tuple[str, ...] = ("caption", "genre")
PromptOverride = Literal["caption", "genre"]

_TEXT_FIELDS = ("caption", "lyrics", "genre", "custom_tag")
KEY_ALIASES = {"vocal_language": "language"}  # alternative key -> field name, in every source
# Also accepted as CSV columns and song.txt keys: the names Side-Step's song.txt uses (key, signature,
# trigger: sidestep_engine/data/sidecar_io.py and preprocess sidecar normalisation in koda-dernet/Side-Step)
# and the ACE-Step app's CSV column Key (acestep/training/dataset_builder_modules/csv_metadata.py).
TABLE_ALIASES = {**KEY_ALIASES, "key": "keyscale", "signature": "timesignature", "time_signature": "timesignature",
                 "trigger": "custom_tag"}
_TIMESIG = re.compile(r"^\s*(\d{1,3})\s*(?:/\s*(\d{1,3})\s*)?$")  # no bar has 1000 beats
_WHOLE = re.compile(r"^\s*([+-]?\d+)(?:\.0*)?\s*$")  # "120", "120.0"
_MAX_DIGITS = 12  # far more than any bpm or duration in seconds, and far from int()'s 4300-digit limit
_TOO_LARGE = 10**_MAX_DIGITS
_NOT_AVAILABLE = "N/A"


@dataclass(frozen=True)
class SampleLabels:
    """What we know about one song. Defaults mean "not given"; see the module docstring for types."""

    caption: str = ""
    lyrics: str = ""  # empty means instrumental
    genre: str = ""
    bpm: int | None = None
    keyscale: str | None = None  # "C major", "F# minor"
    timesignature: str | None = None  # beats per bar: "4"
    language: str = "unknown"
    duration: int | None = None  # whole seconds of the source file
    custom_tag: str = ""  # activation tag for this song; the dataset tag applies when empty
    is_instrumental: bool | None = None
    prompt_override: PromptOverride | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # unknown keys, verbatim

    @classmethod
    def from_dict(cls, data: Any, *, source: Path | str | None = None,
                  notes: list[str] | None = None) -> SampleLabels:
        """Parse a JSON-like mapping strictly; `source` names the file in every error message. With `notes`,
        a language value that names no ACE-Step language is noted there and read as "unknown" instead."""
        if not isinstance(data, dict):
            raise LabelError(f"labels must be a JSON object, got {_type_name(data)}", path=source,
                             fix='write the labels as {"caption": "...", "bpm": 120, ...}')
        data = _resolve_aliases(data, source)
        known = {f.name for f in fields(cls)} - {"extra"}
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        said_instrumental = False
        for key, value in data.items():
            if not isinstance(key, str):
                raise LabelError(f"label keys must be strings, got {echoed(key)}", path=source)
            if key == "language":
                values[key], said_instrumental = _language(value, key, source, notes)
            elif key in known:
                values[key] = _PARSERS[key](value, key, source)
            else:
                extra[key] = value
        if said_instrumental and values.get("is_instrumental") is None:
            values["is_instrumental"] = True
        return cls(**values, extra=extra)

    def to_dict(self, *, full: bool = False) -> dict[str, Any]:
        """Known keys (then `extra`). Unless `full`, keys still at their "not given" default are left out;
        `from_dict(to_dict())` gives back an equal record either way."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if full or is_given(f.name, value):
                out[f.name] = value
        out.update(self.extra)
        return out

    def given_fields(self) -> tuple[str, ...]:
        """Names of the known fields that hold a value (not their "not given" default)."""
        return tuple(f.name for f in fields(self) if f.name != "extra" and is_given(f.name, getattr(self, f.name)))


def is_given(name: str, value: Any) -> bool:
    """Whether a field value counts as written by someone (used for precedence and for `analyze`)."""
    if name == "language":
        return value != "unknown"
    return value is not None and value != ""


def merge_labels(base: SampleLabels, overlay: SampleLabels, *, overwrite: bool) -> SampleLabels:
    """Fill `base` from `overlay`. A given overlay value replaces the base value when `overwrite` is true or
    the base has none; values that are not given never erase anything. Extra keys merge the same way."""
    changes: dict[str, Any] = {}
    for name in overlay.given_fields():
        if overwrite or not is_given(name, getattr(base, name)):
            changes[name] = getattr(overlay, name)
    extra = dict(base.extra)
    for key, value in overlay.extra.items():
        if overwrite or key not in extra:
            extra[key] = value
    return replace(base, **changes, extra=extra)


def label_conflicts(base: SampleLabels, overlay: SampleLabels) -> list[str]:
    """Keys given in both records with different values (what a merge with overwrite would change)."""
    names = [n for n in overlay.given_fields()
             if is_given(n, getattr(base, n)) and getattr(base, n) != getattr(overlay, n)]
    names += [k for k, v in overlay.extra.items() if k in base.extra and base.extra[k] != v]
    return names


def parse_timesignature(value: Any, *, source: Path | str | None = None, key: str = "timesignature") -> str | None:
    """"4", "4/4", 4 → "4"; "6/8" → "6"; null, "" or "N/A" → None."""
    if _not_given(value):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _wrong_type(key, value, 'a time signature such as "4" or "4/4"', source)
    match = _TIMESIG.match(str(value))
    if match is None or int(match.group(1)) <= 0 or (match.group(2) is not None and int(match.group(2)) <= 0):
        raise LabelError(f"{key} is {echoed(value)}, not a time signature", path=source,
                         fix='write beats per bar ("4") or a fraction ("3/4")')
    return str(int(match.group(1)))


def _resolve_aliases(data: dict[str, Any], source: Path | str | None) -> dict[str, Any]:
    out = dict(data)
    for alias, name in KEY_ALIASES.items():
        if alias not in out:
            continue
        value = out.pop(alias)
        if name in out and out[name] != value:
            raise LabelError(f"{alias} ({echoed(value)}) and {name} ({echoed(out[name])}) disagree", path=source,
                             fix=f"keep only {name}")
        out[name] = value
    return out


def _text(value: Any, key: str, source: Path | str | None) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _wrong_type(key, value, "a string", source)
    return value


def _not_given(value: Any) -> bool:
    """null, "" and "N/A" (the metas' word for unknown) mean "not given" for bpm, duration, key and time."""
    return value is None or (isinstance(value, str) and value.strip() in ("", _NOT_AVAILABLE))


def _optional_text(value: Any, key: str, source: Path | str | None) -> str | None:
    return None if _not_given(value) else _text(value, key, source) or None


def _whole_number(value: Any, key: str, source: Path | str | None) -> int | None:
    if _not_given(value):
        return None
    if isinstance(value, bool):
        raise _wrong_type(key, value, "a whole number", source)
    match = _WHOLE.match(value) if isinstance(value, str) else None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif match is not None and len(match.group(1).lstrip("+-0")) <= _MAX_DIGITS:  # int() of any length could fail
        number = int(match.group(1))
    elif match is not None:
        number = _TOO_LARGE
    else:
        raise _wrong_type(key, value, "a whole number", source, fix=f"write {key} as an integer, e.g. 120")
    if number >= _TOO_LARGE:
        raise LabelError(f"{key} is {echoed(value)}, a number too large to be a {key}", path=source,
                         fix=f"write a realistic {key} or remove the key")
    if number < 0 or (key == "bpm" and number == 0):
        raise LabelError(f"{key} is {number}, which is not a usable value", path=source,
                         fix=f"write a positive {key} or remove the key")
    return number


def _language(value: Any, key: str, source: Path | str | None, notes: list[str] | None) -> tuple[str, bool]:
    """(code, said "instrumental"); a value naming no language raises, or is noted when `notes` is given."""
    if value is None:
        return "unknown", False
    if not isinstance(value, str):
        raise _wrong_type(key, value, "a language code", source)
    reading = read_language(value)
    if not reading.recognised:
        if notes is None:
            raise LabelError(f"{key} {echoed(value)} is not an ACE-Step language code", path=source,
                             fix=f"use one of: {' '.join(LANGUAGES)} (or an English language name)")
        notes.append(f"{key} {echoed(value)} is not an ACE-Step language code, read as unknown; fix: write a code "
                     "such as en, de, ja or zh, or an English name such as German")
    return reading.code, reading.instrumental


_TRUE_WORDS, _FALSE_WORDS = ("true", "yes", "1"), ("false", "no", "0")


def _bool(value: Any, key: str, source: Path | str | None) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    word = value.strip().lower() if isinstance(value, str) else None
    if word in _TRUE_WORDS or word in _FALSE_WORDS:
        return word in _TRUE_WORDS
    raise _wrong_type(key, value, "true or false", source)


def _prompt_override(value: Any, key: str, source: Path | str | None) -> str | None:
    if value is None or value == "":
        return None
    if value not in PROMPT_OVERRIDES:
        raise LabelError(f"{key} is {echoed(value)}", path=source, fix='use "caption", "genre" or null')
    return value


def _timesig(value: Any, key: str, source: Path | str | None) -> str | None:
    return parse_timesignature(value, source=source, key=key)


_PARSERS = {
    **{name: _text for name in _TEXT_FIELDS},
    "keyscale": _optional_text,
    "bpm": _whole_number,
    "duration": _whole_number,
    "timesignature": _timesig,
    "is_instrumental": _bool,
    "prompt_override": _prompt_override,
}


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _wrong_type(key: str, value: Any, expected: str, source: Path | str | None, fix: str | None = None) -> LabelError:
    return LabelError(f"{key} must be {expected}, got {_type_name(value)} {echoed(value)}", path=source,
                      fix=fix or f"change the value of {key!r} to {expected}")
