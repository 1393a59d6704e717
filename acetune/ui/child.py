"""`python -m acetune.ui.child JOB_FOLDER ARG...`: run `acetune ARG...` and leave its exit code in the job folder.

The web app starts every long job through this wrapper in a session of its own, so the job outlives
a restart of the app, and a restarted app still learns how the job ended (`exit_code`). A SIGTERM
meant for the job (stop) reaches the command through its process group; the wrapper waits for it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

EXIT_CODE_FILE = "exit_code"


def main(argv: list[str]) -> int:
    folder, args = Path(argv[0]), argv[1:]
    signal.signal(signal.SIGTERM, lambda signum, frame: None)  # a handler, not SIG_IGN: the command keeps the default
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    code = subprocess.call([sys.executable, "-m", "acetune", *args])
    temp = folder / f"{EXIT_CODE_FILE}.tmp"
    temp.write_text(f"{code}\n")
    temp.replace(folder / EXIT_CODE_FILE)
    return code


if __name__ == "__main__":  # pragma: no cover - run as a process by JobQueue
    sys.exit(main(sys.argv[1:]))
