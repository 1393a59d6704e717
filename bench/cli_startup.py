"""Start-up time of the command line: `acetune --help` and `acetune CMD --help` as a user runs them.

    python3 bench/cli_startup.py [--runs 10]

Each command runs in a fresh interpreter (`python -m acetune`), the way a shell starts it; the
median and the slowest of the runs are printed. Help must not import torch (a test checks that);
this measures what is left: the interpreter, typer, rich and acetune's own light modules.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = (["--help"], ["train", "--help"], ["preprocess", "--help"], ["generate", "--help"],
            ["dataset", "list", "--help"], ["nosuchcommand"])


def wall_times(args: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "acetune", *args], capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    start = time.perf_counter()
    for _ in range(args.runs):
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    bare = (time.perf_counter() - start) / args.runs
    print(f"python3 -c pass: {bare * 1000:.0f} ms (the interpreter alone)")
    for command in COMMANDS:
        times = wall_times(command, args.runs)
        print(f"acetune {' '.join(command):24s} median {statistics.median(times) * 1000:5.0f} ms, "
              f"slowest {max(times) * 1000:5.0f} ms ({args.runs} runs)")


if __name__ == "__main__":
    main()
