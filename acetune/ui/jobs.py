"""Long work in child processes: a visible queue that runs one device job at a time, persisted for reattaching.

Each job is a folder under the app's state folder: `job.json` (what it runs, its state, the pid),
`stdout.log`, `stderr.log`, and `exit_code` once the command ended (written by `acetune.ui.child`).
A job that is still running when the app restarts is found again by its folder: the app follows
its logs and learns its end from `exit_code`. Jobs that do not need the accelerator (analyze,
export, merge) start at once; device jobs wait for the one before them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from acetune.atomic import write_json_atomic
from acetune.ui.child import EXIT_CODE_FILE
from acetune.ui.outcome import cli_error, state_of

QUEUED, RUNNING = "queued", "running"
POLL_S = 0.25


@dataclass
class Job:
    id: str
    kind: str  # the acetune command: train, preprocess, generate, ...
    args: list[str]  # after `acetune`
    device: bool = True  # waits for the accelerator
    run_dir: str | None = None  # a training run's folder (events.jsonl)
    state: str = QUEUED
    pid: int | None = None
    exit_code: int | None = None
    created: float = field(default_factory=time.time)

    @property
    def active(self) -> bool:
        return self.state in (QUEUED, RUNNING)

    def command_line(self) -> str:
        return " ".join(["acetune", *(_quoted(a) for a in self.args)])


def _quoted(arg: str) -> str:
    return arg if arg and all(c.isalnum() or c in "-_./=:@,+" for c in arg) else json.dumps(arg)


class JobQueue:
    """The app's jobs; `submit` queues one, a background thread starts and finishes them."""

    def __init__(self, folder: Path, *, parallel: int = 1):
        self.folder = folder
        self.parallel = parallel
        self._lock = threading.Lock()
        self._children: dict[str, subprocess.Popen] = {}
        self.jobs: dict[str, Job] = {job.id: job for job in self._load()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="acetune-ui-jobs", daemon=True)
        self._thread.start()

    # --- public --------------------------------------------------------------------------
    def submit(self, kind: str, args: list[str], *, device: bool = True, run_dir: Path | None = None) -> Job:
        with self._lock:
            number = 1 + max((int(j.id.split("-")[0]) for j in self.jobs.values()), default=0)
            job = Job(f"{number:04d}-{kind}", kind, [str(a) for a in args], device,
                      None if run_dir is None else str(run_dir))
            self.jobs[job.id] = job
            self._save(job)
        self.advance()
        return job

    def stop(self, job_id: str) -> None:
        """A queued job is cancelled; a running one gets SIGTERM (training saves a checkpoint and exits)."""
        with self._lock:
            job = self.jobs[job_id]
            if job.state == QUEUED:
                job.state = "cancelled"
                self._save(job)
            elif job.state == RUNNING and job.pid:
                try:
                    os.killpg(job.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    def listing(self) -> list[Job]:
        with self._lock:
            return sorted(self.jobs.values(), key=lambda j: j.id)

    def latest(self, kind: str) -> Job | None:
        jobs = [j for j in self.listing() if j.kind == kind]
        return jobs[-1] if jobs else None

    def log(self, job: Job, stream: str = "stdout") -> str:
        path = self._folder(job) / f"{stream}.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""

    def error(self, job: Job) -> str | None:
        """The `error:` / `fix:` text of a failed job, as the CLI printed it."""
        return cli_error(self.log(job, "stderr")) if job.state not in (QUEUED, RUNNING) else None

    def status(self, job: Job) -> str:
        return job.state if job.exit_code is None else state_of(job.exit_code)

    def wait(self, job_id: str, timeout: float) -> Job:
        """Block until the job ended (tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        while self.jobs[job_id].active and time.monotonic() < deadline:
            self.advance()
            self._stop.wait(POLL_S)
        return self.jobs[job_id]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    # --- the queue -------------------------------------------------------------------------
    def advance(self) -> None:
        """Record ended jobs, then start queued ones while the device has room (in the order they came)."""
        with self._lock:
            for job in self.jobs.values():
                if job.state == RUNNING:
                    self._check_end(job)
            busy = sum(1 for j in self.jobs.values() if j.state == RUNNING and j.device)
            for job in sorted(self.jobs.values(), key=lambda j: j.id):
                if job.state != QUEUED:
                    continue
                if job.device and busy >= self.parallel:
                    continue
                self._start(job)
                busy += job.device

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            self.advance()

    def _start(self, job: Job) -> None:
        folder = self._folder(job)
        with open(folder / "stdout.log", "wb") as out, open(folder / "stderr.log", "wb") as err:
            child = subprocess.Popen([sys.executable, "-m", "acetune.ui.child", str(folder), *job.args],
                                     stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120"})
        self._children[job.id] = child
        job.state, job.pid = RUNNING, child.pid
        self._save(job)

    def _check_end(self, job: Job) -> None:
        child = self._children.get(job.id)
        ended = None if child is None else child.poll()  # reaps our own child
        code_file = self._folder(job) / EXIT_CODE_FILE
        if code_file.is_file():
            job.exit_code = int(code_file.read_text().strip() or -1)
        elif ended is not None:  # ours, ended without a word: stopped before it could start the command
            job.exit_code = ended
        elif child is None and not _alive(job.pid):  # not ours (an earlier app) and gone without a word
            job.exit_code = -9
        else:
            return
        job.state = state_of(job.exit_code)
        self._children.pop(job.id, None)
        self._save(job)

    def _folder(self, job: Job) -> Path:
        folder = self.folder / job.id
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _save(self, job: Job) -> None:
        write_json_atomic(self._folder(job) / "job.json", asdict(job))

    def _load(self) -> list[Job]:
        jobs = []
        for path in sorted(self.folder.glob("*/job.json")) if self.folder.is_dir() else []:
            try:
                job = Job(**json.loads(path.read_text(encoding="utf-8")))
            except (ValueError, TypeError):
                continue  # not a job this version wrote: left alone
            if job.state == QUEUED:  # the app that queued it is gone: nobody asked this app to run it
                job.state = "cancelled"
            jobs.append(job)
        return jobs


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
