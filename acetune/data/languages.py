"""Vocal languages: the ACE-Step codes, and reading the values other tools write in their place.

ACE-Step 1.5 knows 50 vocal-language codes plus "unknown" (spec model.md §7.2). Label files made by other
tools often hold something else: the ACE-Step app's dataset builder writes `"instrumental"` as a language
(acestep/training/dataset_builder_modules/scan.py in ace-step/ACE-Step-1.5), and people write `"English"`
or `"EN"`. `read_language` maps every value that names one language without doubt; anything else is
reported as not recognised and the caller decides (warn and use "unknown", or refuse).
"""

from __future__ import annotations

from dataclasses import dataclass

# The 50 vocal-language codes of ACE-Step 1.5, plus "unknown" (model.md §7.2).
LANGUAGES: tuple[str, ...] = (
    "ar", "az", "bg", "bn", "ca", "cs", "da", "de", "el", "en", "es", "fa", "fi", "fr", "he", "hi", "hr",
    "ht", "hu", "id", "is", "it", "ja", "ko", "la", "lt", "ms", "ne", "nl", "no", "pa", "pl", "pt", "ro",
    "ru", "sa", "sk", "sr", "sv", "sw", "ta", "te", "th", "tl", "tr", "uk", "ur", "vi", "yue", "zh", "unknown",
)

# English names (lower case) of the languages above; a name here means exactly one code.
LANGUAGE_NAMES: dict[str, str] = {
    "arabic": "ar", "azerbaijani": "az", "bulgarian": "bg", "bengali": "bn", "bangla": "bn", "catalan": "ca",
    "czech": "cs", "danish": "da", "german": "de", "greek": "el", "english": "en", "spanish": "es",
    "persian": "fa", "farsi": "fa", "finnish": "fi", "french": "fr", "hebrew": "he", "hindi": "hi",
    "croatian": "hr", "haitian creole": "ht", "haitian": "ht", "hungarian": "hu", "indonesian": "id",
    "icelandic": "is", "italian": "it", "japanese": "ja", "korean": "ko", "latin": "la", "lithuanian": "lt",
    "malay": "ms", "nepali": "ne", "dutch": "nl", "norwegian": "no", "punjabi": "pa", "panjabi": "pa",
    "polish": "pl", "portuguese": "pt", "romanian": "ro", "russian": "ru", "sanskrit": "sa", "slovak": "sk",
    "serbian": "sr", "swedish": "sv", "swahili": "sw", "tamil": "ta", "telugu": "te", "thai": "th",
    "tagalog": "tl", "filipino": "tl", "turkish": "tr", "ukrainian": "uk", "urdu": "ur", "vietnamese": "vi",
    "cantonese": "yue", "chinese": "zh", "mandarin": "zh",
}

INSTRUMENTAL_WORD = "instrumental"  # written as a language by the ACE-Step app for songs without vocals


@dataclass(frozen=True)
class LanguageReading:
    """What a language value says: an ACE-Step code ("unknown" if none), whether it said "instrumental",
    and whether it was recognised at all (a code, a name in `LANGUAGE_NAMES`, or "instrumental")."""

    code: str
    instrumental: bool = False
    recognised: bool = True


def read_language(value: str) -> LanguageReading:
    """Read a language value case-insensitively: a code ("EN" → en), an English name ("Japanese" → ja),
    or "instrumental" (→ unknown, instrumental). Blank means unknown."""
    word = " ".join(value.split()).casefold()
    if not word:
        return LanguageReading("unknown")
    if word in LANGUAGES:
        return LanguageReading(word)
    if word in LANGUAGE_NAMES:
        return LanguageReading(LANGUAGE_NAMES[word])
    if word == INSTRUMENTAL_WORD:
        return LanguageReading("unknown", instrumental=True)
    return LanguageReading("unknown", recognised=False)
