"""Find the three parts of an ACE-Step checkpoints folder: the DiT, the VAE and the text encoder.

Users point `--checkpoint-dir` at the upstream `checkpoints/` folder (which holds
`acestep-v15-turbo/`, `vae/`, `Qwen3-Embedding-0.6B/`, …) or directly at a DiT folder whose
siblings are `vae/` and `Qwen3-Embedding-0.6B/`. `--model` picks the DiT folder by name.
A diffusers `AceStepPipeline` folder (model_index.json) is a whole bundle by itself: it is the
"DiT folder" (load_model reads its model components) and holds `vae/` and `text_encoder/`; it
can be given directly or picked by `--model` from a folder of models.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from acetune.errors import ModelLoadError
from acetune.model import diffusers_layout
from acetune.model.weights import CONFIG_FILE, INDEX_FILE, SINGLE_FILE

VAE_FOLDER = "vae"
TEXT_ENCODER_FOLDER = "Qwen3-Embedding-0.6B"
DEFAULT_MODEL = "acestep-v15-turbo"


@dataclass(frozen=True)
class Bundle:
    dit: Path  # an official DiT folder, or a diffusers pipeline folder
    vae: Path
    text_encoder: Path


def _is_dit(folder: Path) -> bool:
    if diffusers_layout.is_pipeline(folder):
        return True
    return (folder / CONFIG_FILE).is_file() and (
        (folder / SINGLE_FILE).is_file() or (folder / INDEX_FILE).is_file()
    ) and folder.name not in (VAE_FOLDER, TEXT_ENCODER_FOLDER) and not diffusers_layout.is_pipeline(folder.parent)


def resolve_dit(checkpoint_dir: str | Path, model: str | None = None) -> Path:
    """The DiT folder alone (merging or estimating memory needs no VAE or text encoder)."""
    root = Path(checkpoint_dir).expanduser()
    if not root.is_dir():
        raise ModelLoadError("checkpoint folder not found", path=root,
                             fix="pass the ACE-Step checkpoints folder (holding vae/ and Qwen3-Embedding-0.6B/)")
    if _is_dit(root) and model is None:
        return root
    candidates = sorted(p.name for p in root.iterdir() if p.is_dir() and _is_dit(p))
    name = model or (DEFAULT_MODEL if DEFAULT_MODEL in candidates else candidates[0] if len(candidates) == 1 else None)
    if name is None or not _is_dit(root / name):
        if not candidates:
            raise ModelLoadError("no ACE-Step model here: no folder with config.json and model.safetensors "
                                 "(nor a diffusers pipeline with model_index.json)",
                                 path=root, fix=f"point --checkpoint-dir at the ACE-Step checkpoints folder (holding "
                                                f"{DEFAULT_MODEL}/, {VAE_FOLDER}/ and {TEXT_ENCODER_FOLDER}/)")
        raise ModelLoadError(
            f"no ACE-Step model folder {'named ' + repr(model) if model else 'chosen'} here "
            f"(model folders: {', '.join(candidates)})", path=root, fix="pass --model with one of the listed folders")
    return root / name


def resolve_bundle(checkpoint_dir: str | Path, model: str | None = None) -> Bundle:
    """Locate DiT / VAE / text encoder, naming what is missing and what is there."""
    dit = resolve_dit(checkpoint_dir, model)
    if diffusers_layout.is_pipeline(dit):  # a pipeline holds its own parts
        diffusers_layout.read_index(dit)
        parts_root, vae, text_encoder = dit, dit / diffusers_layout.VAE, dit / diffusers_layout.TEXT_ENCODER
    else:  # a DiT folder given directly has its parts beside it; otherwise they sit beside the model folders
        parts_root = dit.parent
        vae, text_encoder = parts_root / VAE_FOLDER, parts_root / TEXT_ENCODER_FOLDER
    for part, path in (("VAE", vae), ("text encoder", text_encoder)):
        if not (path / CONFIG_FILE).is_file():
            raise ModelLoadError(f"the {part} is missing: expected {path.name}/ with config.json "
                                 f"{'in the pipeline' if parts_root == dit else 'beside the model'}", path=parts_root,
                                 fix="download the full ACE-Step 1.5 bundle (ACE-Step/Ace-Step1.5) into this folder")
    return Bundle(dit, vae, text_encoder)
