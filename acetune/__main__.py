"""`python -m acetune ...` (and `torchrun -m acetune train ...`): the same CLI as the `acetune` command."""

import sys

from acetune.cli.app import main

sys.exit(main())
