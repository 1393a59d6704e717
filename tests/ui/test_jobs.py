"""The job queue: child processes run the CLI's commands, one device job at a time, and survive an app restart."""

from __future__ import annotations

import json
import time

from acetune import __version__
from acetune.ui.jobs import JobQueue
from tests.ui.conftest import free_port, group_alive, stop_every_job

WAIT_S = 120


def test_a_job_runs_the_command_and_keeps_its_output(tmp_path):
    queue = JobQueue(tmp_path / "jobs")
    try:
        job = queue.wait(queue.submit("version", ["--version"]).id, WAIT_S)
        assert (job.state, job.exit_code) == ("done", 0)
        assert queue.log(job).strip() == __version__
        saved = json.loads((tmp_path / "jobs" / job.id / "job.json").read_text())
        assert saved["state"] == "done" and saved["args"] == ["--version"]
    finally:
        queue.close()


def test_a_failed_job_shows_the_clis_error_and_fix(tmp_path):
    queue = JobQueue(tmp_path / "jobs")
    try:
        job = queue.wait(queue.submit("list", ["dataset", "list", str(tmp_path / "no-songs")], device=False).id,
                         WAIT_S)
        assert (job.state, job.exit_code) == ("failed", 2)
        error = queue.error(job)
        assert error.startswith(f"error: {tmp_path / 'no-songs'}: dataset folder does not exist") and "fix: " in error
    finally:
        queue.close()


def test_device_jobs_wait_in_order_and_a_queued_one_can_be_cancelled(tmp_path):
    queue = JobQueue(tmp_path / "jobs", parallel=1)
    try:
        first = queue.submit("one", ["--version"])
        second = queue.submit("two", ["--version"])
        third = queue.submit("three", ["--version"])
        free = queue.submit("free", ["--version"], device=False)
        assert first.state == "running" and free.state == "running"  # a job off the device does not wait
        assert second.state == third.state == "queued"  # python has not even started the first one yet
        queue.stop(third.id)
        assert queue.wait(second.id, WAIT_S).state == "done"
        assert queue.jobs[first.id].state == "done" and queue.jobs[third.id].state == "cancelled"
    finally:
        queue.close()


def test_a_restarted_app_finds_its_running_job_again(tmp_path):
    first_app = JobQueue(tmp_path / "jobs")
    job = first_app.submit("version", ["--version"])
    first_app.close()  # the app goes away; its child goes on
    second_app = JobQueue(tmp_path / "jobs")
    try:
        assert job.id in second_app.jobs
        found = second_app.wait(job.id, WAIT_S)
        assert (found.state, found.exit_code) == ("done", 0) and second_app.log(found).strip() == __version__
    finally:
        second_app.close()


def test_a_job_stopped_as_it_starts_ends_and_is_not_left_running(tmp_path):
    """A stop that reaches the wrapper before it set up its signal handler ends it without an exit_code file:
    the job is still recorded as ended (it once stayed "running" for ever)."""
    queue = JobQueue(tmp_path / "jobs")
    try:
        job = queue.submit("version", ["--version"])
        queue.stop(job.id)
        ended = queue.wait(job.id, WAIT_S)
        assert not ended.active and ended.state in ("stopped", "done") and not group_alive(ended.pid)
    finally:
        queue.close()


def test_the_test_teardown_leaves_no_job_running(tmp_path):
    """What the browser test's fixture does at its end: a job that would run for ever (here the app itself,
    serving until stopped) is stopped once it serves, queued ones are cancelled, and no process is left."""
    queue = JobQueue(tmp_path / "jobs")
    try:
        job = queue.submit("ui", ["ui", "--root", str(tmp_path), "--port", str(free_port())])
        queued = queue.submit("two", ["--version"])
        deadline = time.monotonic() + WAIT_S
        while "acetune ui on" not in queue.log(job) and time.monotonic() < deadline:
            queue.wait(job.id, 0.5)  # (returns at once if the app ended)
        assert job.state == "running" and "acetune ui on" in queue.log(job)
        stop_every_job(queue)
        assert (job.state, queue.jobs[queued.id].state) == ("stopped", "cancelled") and not group_alive(job.pid)
    finally:
        queue.close()
