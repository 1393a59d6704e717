"""`acetune ui` end to end in a real browser, on tiny checkpoints and synthesized songs.

One staged path, as a user walks it: build the demo files, load the songs and edit a caption (the
sidecar on disk changes, other keys kept), preprocess, train until the loss plot has points and an
audition plays, stop, resume, stop, generate and play, export for ComfyUI; a folder outside the root
is refused on the page, and no main page scrolls sideways on a phone. Each page is photographed
(into $ACETUNE_UI_SCREENSHOTS when set, e.g. docs/, else the test's folder).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from playwright.sync_api import expect

JOB_S = 240_000  # ms: a child process on a busy 2-core machine (imports torch, then works)
PAGES = ("songs", "preprocess", "train", "generate", "adapters", "jobs")


def fill(page, elem_id: str, value: str) -> None:
    box = page.locator(f"#{elem_id} textarea, #{elem_id} input").first
    box.fill(value)
    box.press("Tab")  # a Gradio textbox reports its change when it loses focus


def pick(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def value(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first.input_value()


def shoot(page, name: str, folder: Path) -> None:
    page.screenshot(path=str(folder / f"webapp-{name}.png"), full_page=False)


def expect_value(page, elem_id: str, pattern: str, timeout: int = JOB_S) -> None:
    expect(page.locator(f"#{elem_id} textarea, #{elem_id} input").first).to_have_value(
        re.compile(pattern, re.DOTALL), timeout=timeout)


def assert_audio_loads(page, elem_id: str) -> None:
    """The player's audio was served (from inside the root) and the browser decoded a length from it."""
    audio = page.locator(f"#{elem_id} audio[src]").first
    expect(audio).to_have_attribute("src", re.compile(r"\S"), timeout=JOB_S)
    seconds = audio.evaluate("a => a.readyState >= 1 ? a.duration : new Promise(done => a.addEventListener("
                             "'loadedmetadata', () => done(a.duration)))")
    assert seconds > 0.5, seconds


def train_points(page) -> int:
    text = page.locator("#train-points").inner_text()
    return int(text.split()[0]) if text.strip() else 0


def test_whole_path_in_the_browser(served, browser, tmp_path):
    url, ctx, root = served
    shots = Path(os.environ.get("ACETUNE_UI_SCREENSHOTS", tmp_path))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url)

    # Songs: a folder outside the root is refused with the CLI's error text
    fill(page, "songs-folder", "/etc")
    page.click("#songs-load")
    expect_value(page, "songs-status", r"^error: /etc: is outside the folders .*fix: ", 30_000)
    page.click("#build-demo")
    expect_value(page, "songs-status", r"^6 file\(s\)", 120_000)
    songs = root / "acetune-demo" / "songs"
    sidecar = songs / "sunrise_pop.json"
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "mood": "sunny"}))  # a key acetune does not know
    pick(page, "song-pick", "sunrise_pop.wav")
    expect_value(page, "edit-caption", "bright synth pop")
    fill(page, "edit-caption", "a caption typed in the browser")
    fill(page, "edit-bpm", "121")
    page.click("#songs-save")
    expect_value(page, "songs-status", "^wrote ")
    on_disk = json.loads(sidecar.read_text())
    assert on_disk["caption"] == "a caption typed in the browser" and on_disk["bpm"] == 121
    assert on_disk["mood"] == "sunny" and on_disk["language"] == "en"
    expect_value(page, "songs-preview", r"acetune-demo, a caption typed in the browser.*bpm: 121")
    assert_audio_loads(page, "song-player")
    shoot(page, "songs", shots)

    # Preprocess: the songs folder came over from the Songs page
    page.click("#tab-preprocess-button")
    checkpoints = root / "acetune-demo" / "checkpoints"
    fill(page, "pre-checkpoints", str(checkpoints))
    fill(page, "pre-cache", "cache")
    expect_value(page, "pre-songs", str(songs))
    page.click("#pre-start")
    expect_value(page, "pre-status", r"preprocess: done\n.*validate: done")
    expect_value(page, "pre-report", r"6 samples")
    shoot(page, "preprocess", shots)
    assert (root / "cache" / "index.json").is_file() or any((root / "cache").iterdir())
