"""`acetune dataset ...`: list, edit, import/export, split and analyze labelled song folders."""

from __future__ import annotations

import typer

app = typer.Typer(help="Label and inspect song folders.", no_args_is_help=True)
