"""The Train page's live memory estimate: `acetune estimate-memory` for the config on the form.

The estimate is the same meta-device dry run the CLI command makes (no weights are loaded), so it
updates in a moment as settings change, and says before start when the run will not fit.
"""

from __future__ import annotations

from pathlib import Path

from acetune.config import RunConfig, detect_device_memory_gib


def memory_line(config: RunConfig) -> str:
    """Predicted peak of one step, and whether it fits the training device (when that has a known size)."""
    from acetune.model import named_config
    from acetune.model.bundle import resolve_dit
    from acetune.model.checkpoint import read_model_config
    from acetune.model.devices import resolve_device, resolve_precision
    from acetune.train.memory import estimate_memory, fits, memory_levers

    checkpoints = config.data.checkpoint_dir
    if checkpoints and Path(checkpoints).is_dir():
        model_config, where = read_model_config(resolve_dit(checkpoints, config.data.model)), "this checkpoint"
    else:
        model_config, where = named_config("2b"), "the 2B model (no checkpoint folder chosen)"
    device = resolve_device(config.loop.device)
    estimate = estimate_memory(config, model_config, dtype=resolve_precision(config.loop.precision, device))
    need = estimate.total / 2**30
    line = (f"about {_size(estimate.total)} per step on {where} ({estimate.trainable_parameters:,} trainable "
            "parameters; " + ", ".join(f"{name} {_size(value)}" for name, value in estimate.rows()[:-1]) + ")")
    memory = detect_device_memory_gib(config.loop.device)
    if memory is None:
        return line + f"; device {device}: memory not known"
    if not fits(need, memory):
        return line + f"; DOES NOT FIT {memory:.0f} GiB on {device}: try {memory_levers(config, as_flags=False)}"
    return line + f"; fits {memory:.0f} GiB on {device}"


def _size(count: int) -> str:
    return f"{count / 2**30:.2f} GiB" if count >= 2**30 else f"{count / 2**20:.1f} MiB"
