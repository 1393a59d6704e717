"""Event subscribers that write logs: a JSONL event log and TensorBoard scalars.

The loop imports none of these; a front end composes the sinks it wants.
"""

from __future__ import annotations

import json
from pathlib import Path

from acetune.atomic import named_disk_errors
from acetune.events import Auditioned, EvalDone, Event, LayerGradNorms, StepDone


class JsonlSink:
    """One JSON object per event, appended and flushed (a resumed run continues the same file)."""

    def __init__(self, path: Path):
        self._path = path
        with named_disk_errors(path):  # a full disk is a named error here too, not a traceback
            path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(path, "a", encoding="utf-8")

    def __call__(self, event: Event) -> None:
        with named_disk_errors(self._path):
            self._handle.write(json.dumps(event.to_json(), default=str) + "\n")
            self._handle.flush()

    def close(self) -> None:
        with named_disk_errors(self._path):
            self._handle.close()


class TensorBoardSink:
    def __init__(self, log_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(log_dir))

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepDone):
            for name in ("loss", "lr", "grad_norm", "samples_per_s"):
                self._writer.add_scalar(f"train/{name}", getattr(event, name), event.step)
        elif isinstance(event, EvalDone):
            self._writer.add_scalar("eval/loss", event.loss, event.step)
        elif isinstance(event, LayerGradNorms):
            for layer, norm in event.norms.items():
                self._writer.add_scalar(f"grad_norm/{layer}", norm, event.step)
        elif isinstance(event, Auditioned) and event.path.suffix in (".wav", ".flac"):
            self._add_audio(event)

    def _add_audio(self, event: Auditioned) -> None:
        """The audition in TensorBoard's audio tab (mono mix), beside the loss curves."""
        import soundfile

        audio, rate = soundfile.read(str(event.path), dtype="float32", always_2d=True)
        strength = "base" if event.strength is None else f"strength_{event.strength:g}"
        self._writer.add_audio(f"audition/{event.path.stem.split('_seed')[0]}/{strength}/seed_{event.seed}",
                               audio.mean(axis=1), event.step, sample_rate=rate)

    def close(self) -> None:
        self._writer.close()
