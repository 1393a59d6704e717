"""The one training loop: a generator of events that front ends render and tests collect.

    control = Control()
    for event in train.run(config, control):
        ...

It knows nothing about any front end. Stop requests, Ctrl-C, SIGTERM and non-finite losses all
end the same way: a resumable checkpoint of the last good state, then `Finished`. The run's steps:
lock the folder, set up (`session.build_session`), restore or start the state (`resume.RunState`),
prepare auditions, then the step loop (`trainer.Trainer`).
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Iterator

from acetune.atomic import check_writable
from acetune.config import RunConfig
from acetune.events import Event, Warned
from acetune.locks import hold_folder
from acetune.train.auditions import prepare_auditions
from acetune.train.checkpoint import find_latest
from acetune.train.distributed import barrier, from_environment
from acetune.train.objective import Objective
from acetune.train.resume import RunState, check_resumable, restore
from acetune.train.session import build_session
from acetune.train.state import seed_everything
from acetune.train.trainer import Control, Trainer


def run(config: RunConfig, control: Control | None = None) -> Iterator[Event]:
    """The run's events. Its folder is locked (`acetune.locks`) before anything loads and until the
    generator ends or is closed, so a second run on the same folder is refused at once."""
    output_dir = Path(config.save.output_dir)
    main = from_environment().is_main
    if main:
        check_writable(output_dir)
    with hold_folder(output_dir, "acetune train") if main else nullcontext() as lock:
        yield from _run(config, control or Control(), lock.took_over if lock is not None else None)


def _run(config: RunConfig, control: Control, took_over: str | None) -> Iterator[Event]:
    output_dir = Path(config.save.output_dir)
    resume_from, notes = _checkpoint_to_resume(config.save.resume_from, output_dir)
    seed_everything(config.loop.seed)  # a resume then restores the saved states over these
    notes += [Warned("stale-lock", took_over)] if took_over else []
    session = build_session(config, resuming=resume_from is not None, notes=tuple(notes))
    state = RunState.fresh(session, Objective(config.objective))
    if resume_from is not None:
        restore(resume_from, state)
    # rank 0 alone renders, and not while FSDP shards the decoder (it cannot run it alone)
    auditions = prepare_auditions(session) if session.strategy.renders_auditions else None
    events = Trainer(state, control, auditions, output_dir).events(None if resume_from is None else str(resume_from))
    if session.dist.is_main:
        yield from events
    else:  # other data-parallel ranks compute the same run silently; rank 0 reports and saves
        for _ in events:
            pass
    barrier(session.dist)


def _checkpoint_to_resume(resume_from: str | None, output_dir: Path) -> tuple[Path | None, list[Warned]]:
    """The checkpoint folder to continue from; `latest` in a run that saved none yet starts afresh, and says so."""
    if resume_from is None:
        return None, []
    if resume_from != "latest":
        return Path(resume_from), []
    latest = find_latest(output_dir)
    if latest is None:
        return None, [Warned("nothing-to-resume", f"{output_dir} has no complete checkpoint yet: starting from step 0")]
    return latest, []


__all__ = ["Control", "run", "check_resumable"]
