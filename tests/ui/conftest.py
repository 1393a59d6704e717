"""The web app served on a free loopback port over a temporary root, and Debian's Chromium through Playwright."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package (.ci/run installs it); Playwright cannot download here


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


STOP_S = 180  # a stopped training run saves a checkpoint first (a busy 2-core machine)


def group_alive(pgid: int) -> bool:
    """Whether any process of a job's session is left (each job is the leader of its own process group). A leader
    this process started and that has ended is reaped first: a test that restarts the app in one process adopts
    jobs the earlier app started, and an ended child nobody reaped would still count."""
    try:
        os.waitpid(pgid, os.WNOHANG)
    except ChildProcessError:
        pass  # not ours, or reaped already
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def group_ends(pgid: int, timeout_s: float = 10.0) -> bool:
    """Whether the group is gone within the timeout (the wrapper writes the exit code, then exits)."""
    deadline = time.monotonic() + timeout_s
    while group_alive(pgid):
        if time.monotonic() > deadline:
            return False
        threading.Event().wait(0.05)
    return True


def stop_every_job(queue) -> None:
    """Stop every job the test started and wait for its end: the app leaves its runs going on purpose (they
    outlive it), a test must not. A process group still alive after that is killed and fails the test."""
    for job in queue.listing():
        if job.active:
            queue.stop(job.id)
    started = [job for job in queue.listing() if job.pid]
    for job in started:
        queue.wait(job.id, STOP_S)
    left = [job for job in started if not group_ends(job.pid)]
    for job in left:
        os.killpg(job.pid, signal.SIGKILL)
    assert not left, f"jobs still running after the test stopped them: {[job.command_line() for job in left]}"


@pytest.fixture()
def port() -> int:
    return free_port()


@contextmanager
def serving(root: Path):
    """(url, context): the app over `root` on a free port, closed at the end (its jobs are left going, as the app
    leaves them)."""
    from acetune.ui import Roots
    from acetune.ui.app import launch
    from acetune.ui.context import UiContext

    ctx = UiContext.open(Roots.of([root]))
    port = free_port()
    try:
        app = launch(ctx, host="127.0.0.1", port=port, auth=None, block=False)
        try:
            yield f"http://127.0.0.1:{port}/", ctx
        finally:
            app.close()
    finally:
        ctx.queue.close()


@pytest.fixture()
def served(tmp_path):
    """(url, context, root): the app over `tmp_path/root`, closed after the test, and every job it started stopped."""
    root = tmp_path / "root"
    root.mkdir()
    with serving(root) as (url, ctx):
        try:
            yield url, ctx, root
        finally:
            stop_every_job(ctx.queue)


@pytest.fixture()
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), "install Debian's chromium (apt-get install chromium), as .ci/run does"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True)
        try:
            yield launched
        finally:
            launched.close()
