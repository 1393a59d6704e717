"""Run an `acetune` command and die as kill -9 does (os._exit: no cleanup, no finally) at a named point.

    python crash_runner.py MODULE:ATTR COUNT [TEXT] [halfway] -- acetune args...

The process exits with code 137 on the COUNT-th call of MODULE.ATTR (a function, or Class.method),
counting only calls with an argument whose text contains TEXT when it is given (e.g. `final`). The
kill happens as the call starts, so everything before it is on disk and nothing after it is; with
`halfway`, a call on a folder first deletes one file in it (a deletion cut short).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

KILLED = 137  # what a shell reports for a process killed by SIGKILL


def arm(target: str, count: int, match: str | None, halfway: bool) -> None:
    module_name, attr_path = target.split(":")
    owner = importlib.import_module(module_name)
    *parents, attr = attr_path.split(".")
    for name in parents:
        owner = getattr(owner, name)
    original = getattr(owner, attr)
    calls = {"n": 0}

    def dying(*args, **kwargs):
        if match is None or any(match in str(a) for a in (*args, *kwargs.values())):
            calls["n"] += 1
            if calls["n"] == count:
                if halfway and os.path.isdir(args[0]):
                    os.unlink(os.path.join(args[0], sorted(os.listdir(args[0]))[0]))
                sys.stdout.flush()
                os._exit(KILLED)
        return original(*args, **kwargs)

    setattr(owner, attr, dying)


def run_killed(point: tuple[str, ...], args: list[str]) -> None:
    """Run `acetune ARGS` in a child that dies at `point`; fail if it ends any other way."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, __file__, *point, "--", *args], env=env, capture_output=True, text=True)
    assert result.returncode == KILLED, result.stdout[-2000:] + result.stderr[-2000:]


def main() -> int:
    split = sys.argv.index("--")
    target, count, *rest = sys.argv[1:split]
    halfway = "halfway" in rest
    match = next((word for word in rest if word != "halfway"), None)
    arm(target, int(count), match, halfway)
    from acetune.cli.app import main as acetune

    return acetune(sys.argv[split + 1:])


if __name__ == "__main__":
    sys.exit(main())
