"""A config field as a Gradio control, shared by the pages whose forms are generated from the config schema."""

from __future__ import annotations

from typing import Any

import gradio as gr

from acetune.ui.pages.common import FieldNotes
from acetune.ui.train_form import FormField


def control(field: FormField, value: Any, notes: FieldNotes, id_prefix: str) -> gr.components.Component:
    """The field's control (label: its `--set` key, info: the schema's help), and under it the note where an
    error about the field shows; elem ids are `id_prefix` + the key with dashes (the note's ends in `-error`)."""
    elem_id = id_prefix + field.key.replace(".", "-")
    common = dict(label=field.key, info=field.info.help, elem_id=elem_id)
    if field.control == "checkbox":
        made = gr.Checkbox(value=value, **common)
    elif field.control == "choice":
        made = gr.Dropdown(list(field.choices), value=value, **common)
    elif field.control in ("integer", "number"):
        made = gr.Number(value=value, precision=0 if field.control == "integer" else None, **common)
    else:
        made = gr.Textbox(value=value, **common)
    notes.under(field.key, elem_id=elem_id)
    return made
