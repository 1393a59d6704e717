"""Render job events with rich: a progress bar with ETA on a terminal, plain lines otherwise."""

from __future__ import annotations

from typing import Iterable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from acetune.cli.text import printable
from acetune.events import Event, Finished, Progressed, Skipped, Started, Warned


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
                task = progress.add_task(printable(event.job), total=event.total, item="")
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
