"""The default file name of an exported adapter (`acetune export-comfyui`, `acetune export-diffusers`).

ComfyUI lists every LoRA of its one `models/loras/` folder by file name, and a diffusers file is
passed around the same way, so the name says which run and step it holds:
`<run>_step<N>_<tool>.safetensors` in the run folder, where <run> is the run folder's name and N
(6 digits) the adapter metadata's `step`: runs/mystyle/final -> runs/mystyle/mystyle_step000120_comfyui.safetensors;
best/ adds `_best`; checkpoints/step_0000400/ gives mystyle_step000400. Any other folder or file
is named after itself, beside it; without a recorded step the `_step<N>` part is left out.
"""

from __future__ import annotations

from pathlib import Path

from acetune.adapters.kinds import STANDARD_FILES

RUN_OUTPUTS = {"final": "", "best": "_best"}  # run sub-folders holding an inference adapter -> name tag
RUN_CHECKPOINTS = "checkpoints"  # train/checkpoint.py CHECKPOINTS_DIR (adapters may not import train)


def default_export_path(adapter_path: str | Path, metadata: dict[str, str], tool: str = "comfyui") -> Path:
    """`<run>[_best][_step<N>]_<tool>.safetensors` in the run folder (see the module docstring)."""
    path = Path(adapter_path).expanduser().resolve()
    standard = path.is_file() and path.name in STANDARD_FILES
    folder = path.parent if standard else path
    if path.is_file() and not standard:  # a single file: named after itself, beside it
        where, name = path.parent, path.stem.removesuffix(f"_{tool}")
    elif folder.name in RUN_OUTPUTS:
        where, name = folder.parent, folder.parent.name + RUN_OUTPUTS[folder.name]
    elif folder.parent.name == RUN_CHECKPOINTS:  # <run>/checkpoints/step_0000400/ (the step: from the metadata)
        where, name = folder.parent.parent, folder.parent.parent.name
    elif folder.name == "adapter":  # other trainers' <run>/adapter/
        where, name = folder.parent, folder.parent.name
    else:
        where, name = folder.parent, folder.name
    step = metadata.get("step", "")
    return where / f"{name}{f'_step{int(step):06d}' if step.isdigit() else ''}_{tool}.safetensors"
