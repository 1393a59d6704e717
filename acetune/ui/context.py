"""What every page of one running app shares: the allowed folders, the job queue, the runs being followed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from acetune.ui.jobs import Job, JobQueue
from acetune.ui.roots import Roots
from acetune.ui.run_log import RunLog


@dataclass
class UiContext:
    roots: Roots
    queue: JobQueue
    logs: dict[Path, RunLog] = field(default_factory=dict)  # one incremental reader per followed run folder
    checkpoint_dir: Path | None = None  # `--checkpoint-dir`: pre-fills every checkpoints field

    @classmethod
    def open(cls, roots: Roots, *, parallel: int = 1, checkpoint_dir: Path | None = None) -> UiContext:
        checkpoints = None if checkpoint_dir is None else roots.check(checkpoint_dir, must_exist=True)
        return cls(roots, JobQueue(roots.state / "jobs", parallel=parallel), checkpoint_dir=checkpoints)

    @property
    def checkpoints_text(self) -> str:
        """The checkpoints folder as the pages' fields start with it ("" when none was given)."""
        return "" if self.checkpoint_dir is None else str(self.checkpoint_dir)

    def run_log(self, folder: Path) -> RunLog:
        if folder not in self.logs:
            self.logs[folder] = RunLog(folder)
        log = self.logs[folder]
        log.read()
        return log

    def job_line(self, job: Job | None) -> str:
        """A job's state for the page, with the CLI's `error:` / `fix:` text when it failed."""
        if job is None:
            return ""
        ahead = [j for j in self.queue.listing() if j.state == "queued" and j.device and j.id < job.id]
        line = f"{job.id}: {self.queue.status(job)}" + (f" ({len(ahead)} ahead in the queue)" if ahead else "")
        error = self.queue.error(job)
        return line + (f"\n{error}" if error else "")
