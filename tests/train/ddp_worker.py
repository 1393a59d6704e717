"""One rank of a data-parallel test run: `python ddp_worker.py CONFIG.json` with torchrun-style env vars."""

import json
import os
import sys

from acetune.config import config_from_dict
from acetune.train.loop import run

def poison_one_rank(rank: str, call: int) -> None:
    """Make this rank's `call`-th loss NaN (the other ranks stay finite): the hang case of data parallel."""
    import acetune.train.loop as loop

    original, calls = loop.velocity_loss, {"n": 0}

    def velocity_loss(*args, **kwargs):
        out = original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == call and os.environ["RANK"] == rank:
            return type(out)(**{**vars(out), "loss": out.loss * float("nan")})
        return out

    loop.velocity_loss = velocity_loss


if __name__ == "__main__":
    if os.environ.get("ACETUNE_TEST_NAN_RANK"):
        poison_one_rank(os.environ["ACETUNE_TEST_NAN_RANK"], call=2)
    config = config_from_dict(json.loads(open(sys.argv[1]).read()), source=sys.argv[1])
    for event in run(config):
        pass
