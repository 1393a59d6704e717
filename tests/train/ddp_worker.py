"""One rank of a data-parallel test run: `python ddp_worker.py CONFIG.json` with torchrun-style env vars."""

import json
import os
import sys

from acetune.config import config_from_dict
from acetune.train.loop import Control, run


def poison_one_rank(rank: str, call: int) -> None:
    """Make this rank's `call`-th loss NaN (the other ranks stay finite): the hang case of data parallel."""
    import acetune.train.objective as objective

    original, calls = objective.velocity_loss, {"n": 0}

    def velocity_loss(*args, **kwargs):
        out = original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == call and os.environ["RANK"] == rank:
            nan = float("nan")  # as a diverged forward: the loss and every per-sample loss are NaN
            per_sample = None if out.per_sample is None else out.per_sample * nan
            return type(out)(**{**vars(out), "loss": out.loss * nan, "per_sample": per_sample})
        return out

    objective.velocity_loss = velocity_loss


def stop_after(step: int, control: Control) -> None:
    """Request a stop on every rank after optimizer step `step` (as a front end does on Ctrl-C)."""
    from acetune.train.trainer import Trainer

    original = Trainer._optimizer_step

    def _optimizer_step(self):
        yield from original(self)
        if self.progress.step == step:
            control.stop = True

    Trainer._optimizer_step = _optimizer_step


def report_sharding() -> None:
    """Print whether this rank's session is sharded with FSDP (the tests read it from the output)."""
    import acetune.train.loop as loop

    original = loop.build_session

    def build_session(*args, **kwargs):
        session = original(*args, **kwargs)
        print(f"sharded={session.sharded}", flush=True)
        return session

    loop.build_session = build_session


if __name__ == "__main__":
    control = Control()
    report_sharding()
    if os.environ.get("ACETUNE_TEST_NAN_RANK"):
        poison_one_rank(os.environ["ACETUNE_TEST_NAN_RANK"], call=int(os.environ.get("ACETUNE_TEST_NAN_CALL", "2")))
    if os.environ.get("ACETUNE_TEST_STOP_AFTER"):
        stop_after(int(os.environ["ACETUNE_TEST_STOP_AFTER"]), control)
    config = config_from_dict(json.loads(open(sys.argv[1]).read()), source=sys.argv[1])
    for event in run(config, control):
        pass
