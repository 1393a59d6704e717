"""The web app's start-up time, and how long a training step takes from its event to its point on the plot.

    python3 bench/ui.py [--runs 3] [--steps 10]

Start-up: `python -m acetune ui` in a fresh interpreter until the page answers (what a user waits
for after typing the command). Step to plot: the app follows a run folder in Chromium (Debian's
package, through Playwright); the script appends one `StepDone` line at a time to the run's
events.jsonl, as `acetune train` does, and times until the page shows that step's point (target
under 2 s). Prints the median and the slowest.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
# true once the Train page says it plotted n train points
SHOWN_STEPS = "n => (document.querySelector('#train-points').innerText.match(/(\\d+) train points/) || [])[1] == n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_up_s(root: Path) -> float:
    port = free_port()
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "acetune", "ui", "--root", str(root), "--port", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
                return time.perf_counter() - start
            except OSError:
                if child.poll() is not None:
                    raise SystemExit("acetune ui exited before it answered")
                time.sleep(0.05)  # polling a server that is starting: a benchmark, not a test
    finally:
        child.terminate()
        child.wait()


def step_line(step: int) -> str:
    return json.dumps({"event": "StepDone", "step": step, "epoch": 0, "loss": 1.0 / step, "lr": 1e-4,
                       "grad_norm": 1.0, "samples_per_s": 2.0, "peak_mem_gib": 0.1}) + "\n"


def step_to_plot_s(root: Path, steps: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    from acetune.ui import Roots
    from acetune.ui.app import launch
    from acetune.ui.context import UiContext

    run = root / "runs" / "bench"
    run.mkdir(parents=True)
    events = run / "events.jsonl"
    events.write_text(json.dumps({"event": "TrainStarted", "plan": {"total_steps": steps, "effective_batch": 1},
                                  "resumed_from": None}) + "\n")
    ctx = UiContext.open(Roots.of([root]))
    port = free_port()
    app = launch(ctx, host="127.0.0.1", port=port, auth=None, block=False)
    delays = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.click("#tab-train-button")
            box = page.locator("#train-run textarea")
            box.fill(str(run))
            box.press("Tab")
            page.wait_for_function(SHOWN_STEPS, arg=0)
            for step in range(1, steps + 1):
                with open(events, "a", encoding="utf-8") as handle:
                    handle.write(step_line(step))
                start = time.perf_counter()
                page.wait_for_function(SHOWN_STEPS, arg=step, timeout=30_000, polling=20)
                delays.append(time.perf_counter() - start)
            browser.close()
    finally:
        app.close()
        ctx.queue.close()
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="start-ups to time")
    parser.add_argument("--steps", type=int, default=10, help="steps to time from event to plot")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        starts = [start_up_s(root) for _ in range(args.runs)]
        print(f"start-up (python -m acetune ui until the page answers): median {statistics.median(starts):.2f} s, "
              f"slowest {max(starts):.2f} s over {args.runs} runs")
        delays = step_to_plot_s(root, args.steps)
        print(f"step event -> point on the plot: median {statistics.median(delays):.2f} s, slowest {max(delays):.2f} s "
              f"over {args.steps} steps (target < 2 s)")


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    main()
