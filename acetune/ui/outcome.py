"""What a finished command says to the page: its exit code in words, and its `error:` / `fix:` text.

The child process prints errors exactly as the CLI does; the page shows those same lines, not a
second wording of them.
"""

from __future__ import annotations

from acetune.errors import AcetuneError

# acetune's exit codes (acetune/cli/exit_codes.py documents them; the UI reads them, as scripts do)
STATES = {0: "done", 2: "failed", 3: "done, some inputs skipped", 4: "stopped (checkpoint saved)",
          5: "halted (non-finite loss; last good state saved)", -9: "killed",
          -15: "stopped", 137: "killed (out of memory?)"}


def state_of(code: int) -> str:
    return STATES.get(code, f"crashed (exit code {code})")


def error_text(err: AcetuneError) -> str:
    """An error raised in the app's own process, as the CLI prints it: `error: …` then `  fix: …`."""
    return f"error: {err}"


def cli_error(stderr: str) -> str | None:
    """The `error:` block a command printed (with its `fix:` line), else the last line of a traceback."""
    lines = stderr.rstrip().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("error:")]
    if starts:
        return "\n".join(lines[starts[-1]:])
    if any(line.startswith("Traceback") for line in lines):
        return "crash: " + lines[-1]
    return None
