"""Which field of a page an error concerns, so the page can show the CLI's `error:` / `fix:` text beside it.

A path check names its field outright (`Roots.check(..., field=...)` sets `OutsideRootsError.field`).
A config error names its keys in its text, as the CLI prints them ("--set: data.batch_size must
be an integer", "optim.lr = -1 must be > 0", "… fix: put the cache folder in data.cache"); the keys
the error's own words name come first, and only when they name none, the keys its fix names.
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection

from acetune.errors import AcetuneError
from acetune.ui.outcome import error_text

# a dotted config key as errors print it; `[i]` after a tuple field (`optim.betas[1]`) belongs to that field
_DOTTED = re.compile(r"(?<![\w./-])([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)+)(?:\[\d+\])?")
# each line of "N impossible values:" ends in its own "(fix: ...)", whose keys are advice, not the problem
_LINE_FIX = re.compile(r"\s*\(fix: .*\)$", re.MULTILINE)


def keys_named(text: str, keys: Collection[str]) -> list[str]:
    """The keys of `keys` that `text` names, in the order it names them; a table it names (`objective.task_mix`)
    stands for each of its keys."""
    found: list[str] = []
    for match in _DOTTED.finditer(text):
        name = match[1]
        hits = [name] if name in keys else [k for k in keys if k.startswith(name + ".")]
        found += [k for k in hits if k not in found]
    return found


def concerned_fields(err: AcetuneError, fields: Collection[str]) -> list[str]:
    """The fields (of `fields`) an error is about: the one it names outright, else the config keys it names."""
    named = getattr(err, "field", None)
    if named is not None:
        return [named] if named in fields else []
    return keys_named(_LINE_FIX.sub("", err.what), fields) or keys_named(err.fix or "", fields)


def note_html(err: AcetuneError) -> str:
    """The CLI's text for the note under a field (lines kept, escaped)."""
    return f'<div class="field-error">{html.escape(error_text(err))}</div>'
