"""The web app served on a free loopback port over a temporary root, and Debian's Chromium through Playwright."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package (.ci/run installs it); Playwright cannot download here


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def port() -> int:
    return free_port()


@pytest.fixture()
def served(tmp_path):
    """(url, context, root): the app over `tmp_path/root`, closed after the test."""
    from acetune.ui import Roots
    from acetune.ui.app import launch
    from acetune.ui.context import UiContext

    root = tmp_path / "root"
    root.mkdir()
    ctx = UiContext.open(Roots.of([root]))
    port = free_port()
    app = launch(ctx, host="127.0.0.1", port=port, auth=None, block=False)
    try:
        yield f"http://127.0.0.1:{port}/", ctx, root
    finally:
        app.close()
        ctx.queue.close()


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
