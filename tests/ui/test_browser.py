"""`acetune ui` end to end in a real browser, on tiny checkpoints and synthesized songs.

One staged path, as a user walks it: build the demo files, load the songs and edit a caption (the
sidecar on disk changes, other keys kept), preprocess (a row per song), train until the loss plot
has points and an audition plays, stop, resume, stop, generate and play, export for ComfyUI; a
folder outside the root and an impossible config value are refused beside their fields, a preset
keeps the folders typed, and no main page scrolls sideways on a phone. Each page is photographed
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


def shoot(page, name: str, folder: Path, at: str | None = None) -> None:
    """The page from its top, or from the element `at` (scrolled to the top of the window)."""
    if at is None:
        page.evaluate("window.scrollTo(0, 0)")
    else:
        page.locator(at).evaluate("e => window.scrollTo(0, e.getBoundingClientRect().top + window.scrollY - 8)")
    page.screenshot(path=str(folder / f"webapp-{name}.png"), full_page=False)


def expect_note(page, field: str, pattern: str) -> None:
    """The error note right under a field: shown, with the CLI's text, and placed just below the field."""
    note = page.locator(f"#{field}-error")
    expect(note).to_be_visible(timeout=30_000)
    expect(note.locator(".field-error")).to_have_text(re.compile(pattern, re.DOTALL))
    below = page.locator(f"#{field}").bounding_box()
    box = note.bounding_box()
    assert 0 <= box["y"] - (below["y"] + below["height"]) < 40, (field, below, box)


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
    found = re.search(r"(\d+) train points", page.locator("#train-points").inner_text())
    return int(found[1]) if found else 0


def test_whole_path_in_the_browser(served, browser, tmp_path):
    url, ctx, root = served
    shots = Path(os.environ.get("ACETUNE_UI_SCREENSHOTS", tmp_path))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url)

    # Songs: a folder outside the root is refused with the CLI's error text
    fill(page, "songs-folder", "/etc")
    page.click("#songs-load")
    expect_value(page, "songs-status", r"^error: /etc: is outside the folders .*fix: ", 30_000)
    expect_note(page, "songs-folder", r"^error: /etc: is outside the folders .*fix: ")
    page.click("#build-demo")
    expect_value(page, "songs-status", r"^6 file\(s\)", 120_000)
    expect(page.locator("#songs-folder-error")).to_be_hidden()  # the next load that worked took it away
    # auto-labelling: the demo's checkpoints came over; no labeller ticked is refused on the page (a real run
    # of the tiny LM costs a minute here: its command line is tested in test_commands.py)
    page.get_by_text("Label with the 5 Hz LM / Whisper").click()
    expect_value(page, "label-checkpoints", str(root / "acetune-demo" / "checkpoints"), 30_000)
    page.locator("#label-with").get_by_text("lm", exact=True).click()
    page.click("#label-start")
    expect_value(page, "label-output", r"^error: no labeller chosen.*fix: tick at least one of lm, whisper", 30_000)
    shoot(page, "songs-label", shots, at="#songs-label")
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
    fill(page, "pre-cache", "/etc/cache")
    expect_value(page, "pre-songs", str(songs))
    page.click("#pre-start")
    expect_note(page, "pre-cache", r"^error: /etc/cache: is outside the folders .*fix: ")
    fill(page, "pre-cache", "cache")
    page.click("#pre-start")
    expect_value(page, "pre-status", r"preprocess: done\n.*validate: done")
    expect_value(page, "pre-report", r"6 samples")
    expect(page.locator("#pre-cache-error")).to_be_hidden()
    rows = page.locator("#pre-songs-table tbody tr")  # a row per song, each done
    expect(rows).to_have_count(6)
    expect(page.locator("#pre-songs-table tbody td:nth-child(2)")).to_have_text(["done"] * 6)
    expect(rows.first).to_contain_text("city_funk.wav")
    shoot(page, "preprocess", shots, at="#pre-start")  # the button, the status, a row per song, the report
    assert (root / "cache" / "index.json").is_file() or any((root / "cache").iterdir())

    # Train: common options on the page, two from the generated advanced section; the cache came over
    page.click("#tab-train-button")
    expect_value(page, "cfg-data-cache", "^cache$")
    expect_value(page, "cfg-data-checkpoint_dir", f"^{re.escape(str(checkpoints))}$")
    pick(page, "train-preset", "high_quality")  # a preset sets what it declares, and keeps the folders typed
    expect_value(page, "cfg-adapter-rank", "^128$", 30_000)
    expect_value(page, "cfg-data-checkpoint_dir", f"^{re.escape(str(checkpoints))}$")
    pick(page, "train-preset", "quick_test")
    expect_value(page, "cfg-adapter-rank", "^16$", 30_000)
    expect_value(page, "cfg-data-cache", "^cache$")
    fill(page, "cfg-data-batch_size", "0")  # impossible: the error shows under the field
    expect_note(page, "cfg-data-batch_size", r"^error: data\.batch_size = 0 must be")
    fill(page, "cfg-data-batch_size", "1")
    expect(page.locator("#cfg-data-batch_size-error")).to_be_hidden(timeout=120_000)
    fill(page, "cfg-save-output_dir", "runs/e2e")
    fill(page, "cfg-loop-epochs", "1000")  # runs until stopped
    fill(page, "cfg-data-crop_frames", "100")
    fill(page, "cfg-audition-every_steps", "1000")  # the base model's audition comes before the first step
    fill(page, "cfg-audition-prompts", '["bright synth pop"]')
    page.get_by_text("Advanced (every other config field)").click()
    page.locator("#train-advanced").get_by_text("Logging", exact=True).click()
    fill(page, "cfg-log-log_every", "1")
    page.locator("#train-advanced").get_by_text("Loop", exact=True).click()
    fill(page, "cfg-loop-eval_every", "1000")  # no evaluation pass every epoch: this test is about the page
    page.locator("#train-advanced").get_by_text("Auditions", exact=True).click()
    fill(page, "cfg-audition-duration_s", "2")
    expect_value(page, "train-memory", r"^about [\d.]+ MiB per step on this checkpoint", 120_000)
    page.click("#train-start")
    expect(page.locator("#train-points")).to_have_text(re.compile(r"\b([2-9]|\d\d+) train points"), timeout=JOB_S)
    assert_audio_loads(page, "audition-0")
    expect(page.locator("#audition-0")).to_contain_text("audition · step 0 · base model · seed 42")
    page.click("#train-stop")
    expect_value(page, "train-status", r"train: stopped \(checkpoint saved\)")
    expect(page.locator("#train-plot g.mark-line path").first).to_have_attribute("d", re.compile(r"^M"))  # drawn
    expect(page.locator("#train-plot g.role-legend")).to_have_count(1)  # the chart finished drawing: legend last
    shoot(page, "train", shots)
    before = train_points(page)
    page.click("#train-resume")
    expect_value(page, "train-status", r"train: running")
    page.wait_for_function("before => parseInt(document.querySelector('#train-points').innerText.match("
                           "/(\\d+) train points/)[1]) > before", arg=before, timeout=JOB_S)
    assert "resumed" in (root / "runs" / "e2e" / "events.jsonl").read_text()
    page.click("#train-stop")
    expect_value(page, "train-status", r"train: stopped \(checkpoint saved\)")
    adapter = sorted((root / "runs" / "e2e" / "checkpoints").glob("step_*"))[-1]

    # Generate with the adapter, and play the take
    page.click("#tab-generate-button")
    expect_value(page, "gen-checkpoints", str(checkpoints))
    fill(page, "gen-caption", "acetune-demo, bright synth pop")
    fill(page, "gen-duration", "2")
    fill(page, "gen-out", "outputs")
    page.click("#gen-find")
    pick(page, "gen-adapter-0", str(adapter))
    page.click("#gen-start")
    expect_value(page, "gen-status", r"generate: done")
    assert_audio_loads(page, "take-0")
    expect(page.locator("#gen-sidecar")).to_contain_text('"seed": 42')
    assert (root / "outputs" / "take_seed42.wav").is_file()
    shoot(page, "generate", shots)

    # Adapters: the run's checkpoints with metadata; export for ComfyUI
    page.click("#tab-adapters-button")
    page.click("#adapters-find")
    expect(page.locator("#adapters-table")).to_contain_text(adapter.name, timeout=60_000)  # a scan of the root
    pick(page, "adapters-pick", str(adapter))
    page.click("#adapters-comfyui")
    expect_value(page, "adapters-output", r"export-comfyui: done.*wrote ")
    assert list((root / "runs" / "e2e").glob("*comfyui.safetensors"))
    shoot(page, "adapters", shots)
    page.click("#tab-jobs-button")
    expect(page.locator("#jobs-table")).to_contain_text("acetune train --config", timeout=30_000)
    shoot(page, "jobs", shots)

    # a phone: no main page scrolls sideways
    for name in PAGES:  # (a phone shows some tabs in a menu: each page is opened at full width first)
        page.set_viewport_size({"width": 1280, "height": 900})
        page.click(f"#tab-{name}-button")
        page.set_viewport_size({"width": 390, "height": 844})
        wide = page.evaluate("() => document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth")
        assert wide <= 0, f"{name} is {wide} px wider than a phone"
    page.set_viewport_size({"width": 1280, "height": 900})
    page.click("#tab-train-button")
    page.set_viewport_size({"width": 390, "height": 844})
    shoot(page, "phone-train", shots)
