"""User text on the terminal exactly as it is: never as markup, never as control characters.

File names, labels and error messages come from the user's disk. Printed raw through rich, `[red]`
in a song's name recolours the line or raises MarkupError, a newline or a bidirectional control
breaks the layout or makes one name look like another, and non-UTF-8 bytes crash the encoder.
"""

from __future__ import annotations

import unicodedata

from rich.markup import escape

# Unicode bidirectional controls: printed as they are, they reorder the text after them, so one file name
# could be made to look like another (the "Trojan Source" trick).
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# control characters (newline, escape, ...) and the line and paragraph separators
_HIDDEN_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


def shown(value: object) -> str:
    """User text (a file name, a reason) as it is, safe for any terminal.

    Control characters and bidirectional controls become escapes such as `\\n`, so a name cannot
    break the layout, move the cursor or fake another name; bytes of a file name that are not UTF-8
    (kept by Python as surrogates) are shown as `\\xe9` instead of failing the terminal's encoder.
    """
    text = str(value)
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that did not come from a file name's bytes
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(_escaped(ch) if _hidden(ch) else ch for ch in text)


def _hidden(ch: str) -> bool:
    return ch in _BIDI_CONTROLS or unicodedata.category(ch) in _HIDDEN_CATEGORIES


def _escaped(ch: str) -> str:
    return ch.encode("unicode_escape").decode("ascii")


def printable(value: object) -> str:
    """`shown(value)` with rich markup escaped, for text inside a rich markup string."""
    return escape(shown(value))


def shown_lines(text: str) -> str:
    """A multi-line message (an error and its fix) with each line made safe and the line breaks kept."""
    return "\n".join(shown(line) for line in text.split("\n"))


def printable_lines(text: str) -> str:
    """`shown_lines(text)` with rich markup escaped (lyrics, prompts: their line breaks are content)."""
    return escape(shown_lines(text))
