"""Exit codes of acetune commands, in one place, so scripts and CI can tell the outcomes apart."""

from __future__ import annotations

OK = 0  # everything asked for was done
USER_ERROR = 2  # a problem the user can fix (an AcetuneError), or nothing usable came out; click usage errors too
PARTIAL = 3  # finished, but some inputs were skipped (each listed with its reason); the output holds the rest
STOPPED = 4  # training stopped on request (Ctrl-C, SIGTERM) after saving a checkpoint; --resume-from latest goes on
HALTED = 5  # training halted on non-finite losses (loop.nan_patience) after saving the last good state

__all__ = ["HALTED", "OK", "PARTIAL", "STOPPED", "USER_ERROR"]
