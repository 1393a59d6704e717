"""What the pages share: error text in place of a result and beside its field, the tail of a command's output."""

from __future__ import annotations

import functools
from typing import Any, Callable

import gradio as gr

from acetune.errors import AcetuneError
from acetune.ui.field_errors import concerned_fields, note_html
from acetune.ui.outcome import error_text


class FieldNotes:
    """A hidden note under each field of a page that can be wrong; an error about a field shows in its note.

    Fields are named by the page (a config key on the Train page, the field's elem_id elsewhere); a
    handler guarded with these notes has them as its last outputs (`outputs`)."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.notes: dict[str, gr.HTML] = {}

    def under(self, field: str, elem_id: str | None = None) -> gr.HTML:
        """The note for `field`, placed where it is made (right under the field); its elem id is the field's
        control's (`elem_id`, else the prefix and the field with dashes) and `-error`."""
        elem_id = elem_id or (self.prefix + field).replace(".", "-")
        self.notes[field] = gr.HTML(visible=False, elem_id=elem_id + "-error", padding=False)
        return self.notes[field]

    @property
    def outputs(self) -> list[gr.HTML]:
        return list(self.notes.values())

    def updates(self, err: AcetuneError | None) -> list:
        """Each note: the error beside the fields it concerns, hidden elsewhere (and everywhere when None)."""
        concerned = set() if err is None else set(concerned_fields(err, self.notes))
        return [gr.update(value=note_html(err), visible=True) if name in concerned else gr.update(visible=False)
                for name in self.notes]


def guarded(outputs: int, notes: FieldNotes | None = None) -> Callable:
    """A handler whose last output is the page's status box: an AcetuneError shows there as the CLI prints it,
    and the other outputs stay as they were. With `notes` (the event's last outputs, after the status box),
    the error also shows beside the field it concerns, and a handler that succeeds hides every note."""

    def decorate(handler: Callable) -> Callable:
        @functools.wraps(handler)
        def wrapper(*args: Any) -> Any:
            try:
                result = handler(*args)
            except AcetuneError as err:
                shown = (*([gr.skip()] * (outputs - 1)), error_text(err))
                return shown + tuple(notes.updates(err)) if notes else (shown if outputs > 1 else shown[0])
            if notes is None:
                return result
            return (*(result if outputs > 1 else (result,)), *notes.updates(None))

        return wrapper

    return decorate


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])
