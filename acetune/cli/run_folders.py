"""What to point at when an adapter path inside a run folder does not exist yet (final/ before the run ends)."""

from __future__ import annotations

from pathlib import Path

from acetune.errors import ModelLoadError

_RUN_MARKERS = ("config.resolved.toml", "checkpoints", "events.jsonl")


def missing_adapter_error(path: Path) -> ModelLoadError:
    """The error for an adapter path that does not exist, with the run's existing adapters as the fix."""
    run = path.parent
    if not any((run / marker).exists() for marker in _RUN_MARKERS):
        return ModelLoadError("no such adapter file or folder", path=path,
                              fix="point at a run's final/ or best/ folder, or an adapter file")
    from acetune.train.checkpoint import list_checkpoints

    found = [str(run / name) for name in ("final", "best") if (run / name).is_dir()]
    checkpoints = list_checkpoints(run)
    found += [f"{checkpoints[-1][1]} (the latest checkpoint, step {checkpoints[-1][0]})"] if checkpoints else []
    if not found:
        return ModelLoadError(f"the run in {run} has saved no adapter yet", path=path,
                              fix="wait for its first checkpoint (save.save_every), or resume it with "
                                  "`acetune train --out ... --resume-from latest`")
    return ModelLoadError(f"the run in {run} has no {path.name}/ (yet)", path=path, fix=f"use {' or '.join(found)}")
