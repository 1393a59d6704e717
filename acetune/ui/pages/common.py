"""What the pages share: error text in place of a result, job progress read from a command's output."""

from __future__ import annotations

import functools
import re
from typing import Any, Callable

import gradio as gr

from acetune.errors import AcetuneError
from acetune.ui.outcome import error_text

_COUNTER = re.compile(r"^\[(\d+)/(\d+)\] (.*)$")  # the CLI's plain progress line: "[3/6] song.wav"


def guarded(outputs: int) -> Callable:
    """A handler whose last output is the page's status box: an AcetuneError shows there as the CLI prints it,
    and the other outputs stay as they were."""

    def decorate(handler: Callable) -> Callable:
        @functools.wraps(handler)
        def wrapper(*args: Any) -> Any:
            try:
                return handler(*args)
            except AcetuneError as err:
                return (*([gr.skip()] * (outputs - 1)), error_text(err)) if outputs > 1 else error_text(err)

        return wrapper

    return decorate


def progress_html(stdout: str) -> str:
    """A bar for the latest `[done/total] item` line a command printed, and the items done so far."""
    matches = [m for m in map(_COUNTER.match, stdout.splitlines()) if m]
    if not matches:
        return ""
    done, total, item = int(matches[-1][1]), int(matches[-1][2]), matches[-1][3]
    return (f'<progress max="{total}" value="{done}" style="width:100%"></progress>'
            f"<div>{done}/{total}: {_escape(item)}</div>")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])
