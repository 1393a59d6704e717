"""The app restarted while a training run goes on: the new app lists the run's job and follows its events.jsonl.

The run is a stand-in: a job the queue records as training (its command, `acetune ui` on another
folder, runs until stopped, as a long training run does) whose run folder the test writes events
into, so what is tested is the app finding and following it, in seconds and without a model.
"""

from __future__ import annotations

import json
import re

from playwright.sync_api import expect

from acetune.events import StepDone, TrainStarted
from tests.ui.conftest import free_port, serving, stop_every_job

WAIT_MS = 60_000


def append(run, *events) -> None:
    with open(run / "events.jsonl", "a", encoding="utf-8") as handle:
        for event in events:
            handle.write(json.dumps(event.to_json()) + "\n")


def step(n: int) -> StepDone:
    return StepDone(step=n, epoch=0, loss=2.0 / n, lr=1e-4, grad_norm=1.0, samples_per_s=2.0, peak_mem_gib=0.1)


def test_a_restarted_app_follows_the_run_still_going(tmp_path, browser):
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    run = root / "runs" / "long"
    run.mkdir(parents=True)
    elsewhere.mkdir()
    append(run, TrainStarted({"total_steps": 100, "effective_batch": 1}, None), step(1), step(2))
    with serving(root) as (url, ctx):
        job = ctx.queue.submit("train", ["ui", "--root", str(elsewhere), "--port", str(free_port())], run_dir=run)
        first = browser.new_page(viewport={"width": 1280, "height": 900})
        first.goto(url)
        first.click("#tab-train-button")
        expect(first.locator("#train-points")).to_have_text(re.compile(r"\b2 train points"), timeout=WAIT_MS)
        first.close()
    # the first app is gone (its page closed, its server and queue shut); the job goes on
    with serving(root) as (url, ctx):
        try:
            assert ctx.queue.jobs[job.id].state == "running"
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            page.click("#tab-train-button")
            run_box = page.locator("#train-run textarea, #train-run input").first
            expect(run_box).to_have_value(str(run), timeout=WAIT_MS)
            expect(page.locator("#train-status textarea")).to_have_value(re.compile(f"^{job.id}: running"),
                                                                        timeout=WAIT_MS)
            expect(page.locator("#train-points")).to_have_text(re.compile(r"\b2 train points"), timeout=WAIT_MS)
            append(run, step(3))  # the run goes on: the page follows it live
            expect(page.locator("#train-points")).to_have_text(re.compile(r"\b3 train points"), timeout=WAIT_MS)
            page.click("#tab-jobs-button")
            expect(page.locator("#jobs-table")).to_contain_text(f"{job.id}", timeout=WAIT_MS)
            expect(page.locator("#jobs-table")).to_contain_text("running", timeout=WAIT_MS)
        finally:
            stop_every_job(ctx.queue)
