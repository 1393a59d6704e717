"""Auto-labelling: the 5 Hz LM describes each song, Whisper writes its lyrics; answers merge into `song.json`.

Public API (the CLI's `acetune dataset label` and the web app call these):
- `label_songs(folder, checkpoint_dir, LabelOptions(...))` -> events: scan, load the labellers, label.
- `open_labellers(checkpoint_dir, options)` + `label_dataset(dataset, labellers, ...)`: the same in two
  steps, to keep loaded models across runs.
"""

from acetune.label.base import Labeller, Proposal
from acetune.label.fields import DEFAULT_FIELDS, LABEL_FIELDS, parse_fields
from acetune.label.lm import LmSettings
from acetune.label.run import AlreadyLabelled, Labelled, LabellerReady, label_dataset
from acetune.label.songs import LABELLER_KINDS, LabelOptions, label_songs, open_labellers

__all__ = [
    "AlreadyLabelled", "DEFAULT_FIELDS", "LABELLER_KINDS", "LABEL_FIELDS", "LabelOptions", "Labelled",
    "Labeller", "LabellerReady", "LmSettings", "Proposal", "label_dataset", "label_songs", "open_labellers",
    "parse_fields",
]
