"""Render job events with rich: a progress bar with ETA on a terminal, plain lines otherwise."""

from __future__ import annotations

import unicodedata
from typing import Iterable

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from acetune.events import Event, Finished, Progressed, Skipped, Started, Warned

# Unicode bidirectional controls: printed as they are, they reorder the text after them, so one file name
# could be made to look like another (the "Trojan Source" trick).
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# control characters (newline, escape, ...) and the line and paragraph separators
_HIDDEN_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


def printable(value: object) -> str:
    """User text (a file name, a reason) safe to print through rich, and shown as it is.

    rich markup in it is escaped (`broken [red].wav` would otherwise raise MarkupError or recolour the
    line); control characters and bidirectional controls become escapes such as `\\n`, so a name cannot
    break the layout, move the cursor or fake another name; bytes of a file name that are not UTF-8
    (kept by Python as surrogates) are shown as `\\xe9` instead of failing the terminal's encoder.
    """
    text = str(value)
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that did not come from a file name's bytes
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    shown = "".join(_escaped(ch) if _hidden(ch) else ch for ch in text)
    return escape(shown)


def _hidden(ch: str) -> bool:
    return ch in _BIDI_CONTROLS or unicodedata.category(ch) in _HIDDEN_CATEGORIES


def _escaped(ch: str) -> str:
    return ch.encode("unicode_escape").decode("ascii")


def render(events: Iterable[Event], console: Console) -> tuple[Finished | None, list[Skipped]]:
    """Consume events; returns the Finished event (if any) and every Skipped one for the report."""
    skipped: list[Skipped] = []
    finished: Finished | None = None
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[item]}"),
                        console=console, disable=not console.is_terminal)
    with progress:
        task = None
        for event in events:
            if isinstance(event, Started):
                task = progress.add_task(escape(event.job), total=event.total, item="")
                if not console.is_terminal:
                    console.print(f"{printable(event.job)}: {event.total} to do")
            elif isinstance(event, Progressed) and task is not None:
                progress.update(task, completed=event.done, item=printable(event.item))
                if not console.is_terminal:
                    console.print(f"[{event.done}/{event.total}] {printable(event.item)}", highlight=False)
            elif isinstance(event, Skipped):
                skipped.append(event)
                progress.console.print(f"[yellow]skipped[/] {printable(event.path)}: {printable(event.reason)}",
                                       highlight=False)
            elif isinstance(event, Warned):
                progress.console.print(f"[yellow]warning[/] {printable(event.text)}", highlight=False)
            elif isinstance(event, Finished):
                finished = event
    return finished, skipped
