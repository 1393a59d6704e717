"""One rank of a data-parallel test run: `python ddp_worker.py CONFIG.json` with torchrun-style env vars."""

import json
import sys

from acetune.config import config_from_dict
from acetune.train.loop import run

if __name__ == "__main__":
    config = config_from_dict(json.loads(open(sys.argv[1]).read()), source=sys.argv[1])
    for event in run(config):
        pass
