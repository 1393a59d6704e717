"""What a run writes: resumable checkpoints (`checkpoints/step_N/`) and inference adapters (`best/`, `final/`).

With FSDP every rank takes part (the weights are gathered) and rank 0 alone writes; with replicas
rank 0 alone saves. The EMA weights, when kept, are what is saved.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Iterator

from acetune.adapters import save_adapter
from acetune.events import Event, Saved
from acetune.train.adapter_card import adapter_metadata
from acetune.train.checkpoint import prune_checkpoints, save_checkpoint, step_folder
from acetune.train.resume import RunState, checkpoint_state
from acetune.train.session import Session
from acetune.train.tasks import trained_tasks


def metadata(session: Session, step: int) -> dict[str, str]:
    """The adapter header: what it was trained on, how, and for how long."""
    config = session.config
    return adapter_metadata(variant=session.plan.variant, fingerprint=session.cache_fingerprint,
                            trigger=session.trigger, adapter_kind=config.adapter.kind.value, step=step,
                            base_model=session.dit_folder.name, compute_dtype=session.compute_dtype,
                            rope_dtype=config.loop.rope_dtype.value,
                            tasks=tuple(task.value for task in trained_tasks(config.objective)))


def _ema_applied(state: RunState):
    return state.ema.applied() if state.ema is not None else nullcontext()


def save_inference(state: RunState, folder: Path, kind: str) -> Iterator[Event]:
    """The adapter alone, as `acetune generate` loads it (`best/`, `final/`)."""
    session, step = state.session, state.progress.step
    if not session.strategy.saves_here:
        return
    with _ema_applied(state):
        adapter = session.strategy.adapter_for_saving()
        if adapter is not None:
            save_adapter(adapter, folder, metadata=metadata(session, step), overwrite=True)
    if adapter is not None:
        yield Saved(step, folder, kind)


def save_resumable(state: RunState, output_dir: Path) -> Iterator[Event]:
    """A checkpoint a resume continues from exactly (adapter + `state.json` + `state.safetensors`)."""
    session, step = state.session, state.progress.step
    if not session.strategy.saves_here:
        return
    tree, tensors = checkpoint_state(state)  # with FSDP every rank gathers; rank 0 writes
    folder = step_folder(output_dir, step)
    with _ema_applied(state):
        adapter = session.strategy.adapter_for_saving()
        if adapter is not None:
            save_checkpoint(folder, lambda staging: save_adapter(adapter, staging, metadata=metadata(session, step),
                                                                 overwrite=True),
                            tree, tensors)
    if adapter is None:
        return
    prune_checkpoints(output_dir, session.config.save.keep_last)
    yield Saved(step, folder, "checkpoint")
