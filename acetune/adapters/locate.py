"""`locate`: the one answer to "which file is the adapter the user pointed at?", for every reader.

Training's `load_adapter` and inference's `inspect_adapter`/`read_adapter` both start here, so a
layout one of them accepts the other finds too. Accepted: a folder holding exactly one standard
adapter (a PEFT pair, `lokr_weights.safetensors`, `loha_weights.safetensors`, `decoder.safetensors`
or diffusers' `pytorch_lora_weights.safetensors`); a run folder whose adapter sits in a nested
`adapter/` folder (the layout of other trainers); a path to a file of such a folder; any other
`.safetensors` file (a single-file adapter).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from acetune.adapters.kinds import PEFT_CONFIG, PEFT_WEIGHTS, WEIGHTS_FILES
from acetune.errors import ModelLoadError

NESTED = "adapter"  # `<run>/adapter/`: where other trainers put the adapter inside a run folder


@dataclass(frozen=True)
class Located:
    """The adapter's weights file, and the PEFT config beside it (None for every other format)."""

    weights: Path
    config: Path | None

    @property
    def marker(self) -> str:
        """The file name that says which format this is: the PEFT config, else the weights file's name."""
        return (self.config or self.weights).name


def locate(path: str | Path) -> Located:
    """The adapter at `path` (a folder, a run folder with `adapter/`, or a file); ModelLoadError names the path."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError("no such adapter file or folder", path=path)
    if path.is_file():
        if path.name in (PEFT_CONFIG, PEFT_WEIGHTS) and (path.parent / PEFT_CONFIG).is_file():
            path = path.parent
        elif path.suffix != ".safetensors":
            raise ModelLoadError("not a .safetensors adapter file", path=path,
                                 fix="pass the adapter folder or its .safetensors file (.bin/.pt are not read)")
        else:
            return Located(path, None)
    found = [name for name in (PEFT_CONFIG, *WEIGHTS_FILES) if (path / name).is_file()]
    if not found and (path / NESTED).is_dir():
        return locate(path / NESTED)
    if not found:
        raise ModelLoadError(f"no adapter here (expected {PEFT_CONFIG}, {', '.join(WEIGHTS_FILES[:-1])} or "
                             f"{WEIGHTS_FILES[-1]})", path=path, fix="pass the adapter folder, or a .safetensors file")
    if len(found) > 1:
        raise ModelLoadError(f"more than one adapter here ({', '.join(found)})", path=path,
                             fix="keep one adapter per folder, or pass the file you mean")
    if found[0] != PEFT_CONFIG:
        return Located(path / found[0], None)
    if not (path / PEFT_WEIGHTS).is_file():
        raise ModelLoadError(f"{PEFT_CONFIG} is there but {PEFT_WEIGHTS} is missing", path=path,
                             fix="copy the whole adapter folder (PEFT .bin weights are not read)")
    return Located(path / PEFT_WEIGHTS, path / PEFT_CONFIG)
