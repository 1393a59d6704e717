"""Read an ACE-Step model saved in diffusers' pipeline layout, under the official names.

The layout (diffusers 0.42.1 `AceStepPipeline`; `model_index.json` names each component and its
class, and each component lives in the folder of its name):

    model_index.json            {"_class_name": "AceStepPipeline", "transformer": ["diffusers", ...], ...}
    transformer/                config.json + diffusion_pytorch_model.safetensors (or shards + index)
    condition_encoder/          ... also holds null_condition_emb and the silence_latent buffer
    audio_tokenizer/            optional (cover hints from source audio)
    audio_token_detokenizer/    optional
    vae/  text_encoder/  tokenizer/  scheduler/

`find_weights` presents the four model components as one official-named `WeightFiles`, so
`load_model` reads a pipeline exactly as it reads an official folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

from acetune.errors import ModelLoadError
from acetune.model.config import ModelConfig
from acetune.model.diffusers_config import config_from_components
from acetune.model.diffusers_keys import COMPONENTS, SILENCE_COMPONENT, SILENCE_LATENT, key_from_diffusers
from acetune.model.weights import CONFIG_FILE, WeightFiles, find_weight_files

MODEL_INDEX = "model_index.json"
PIPELINE_CLASS = "AceStepPipeline"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
MODEL_COMPONENTS = tuple(COMPONENTS.values())  # transformer, condition_encoder, audio_tokenizer, audio_token_detokenizer
REQUIRED = ("transformer", "condition_encoder")
VAE, TEXT_ENCODER, TOKENIZER, SCHEDULER = "vae", "text_encoder", "tokenizer", "scheduler"


def is_pipeline(folder: Path) -> bool:
    """A diffusers pipeline folder (it has `model_index.json`); `read_index` checks it is ACE-Step's."""
    return (Path(folder) / MODEL_INDEX).is_file()


def read_index(folder: Path) -> dict[str, Any]:
    """model_index.json, refused unless it is an `AceStepPipeline` with a transformer and condition encoder."""
    path = Path(folder) / MODEL_INDEX
    data = _read_json(path)
    if data.get("_class_name") != PIPELINE_CLASS:
        raise ModelLoadError(f"this diffusers pipeline is a {data.get('_class_name')!r}, not an {PIPELINE_CLASS}",
                             path=path, fix="point at an ACE-Step 1.5 model (official or diffusers layout)")
    missing = [name for name in REQUIRED if not (Path(folder) / name / CONFIG_FILE).is_file()]
    if missing:
        raise ModelLoadError(f"the pipeline has no {' or '.join(f'{m}/config.json' for m in missing)}",
                             path=Path(folder), fix="download or copy the whole pipeline folder again")
    return data


def present_components(folder: Path) -> list[str]:
    """The model components this pipeline holds, in `MODEL_COMPONENTS` order."""
    read_index(folder)
    return [name for name in MODEL_COMPONENTS if (Path(folder) / name / CONFIG_FILE).is_file()]


def read_config(folder: Path) -> ModelConfig:
    """The official `ModelConfig` that the pipeline's component configs describe."""
    configs = {name: _read_json(Path(folder) / name / CONFIG_FILE) for name in present_components(folder)}
    return config_from_components(configs, Path(folder))


def find_weights(folder: Path) -> WeightFiles:
    """Headers of every component's weights, keyed by official names (the silence latent left out)."""
    folder = Path(folder)
    merged = WeightFiles(folder, [])
    for component in present_components(folder):
        part = find_weight_files(folder / component, WEIGHTS_NAME)
        merged.files.extend(part.files)
        for stored, shape in part.shapes.items():
            if (component, stored) == (SILENCE_COMPONENT, SILENCE_LATENT):
                continue
            try:
                key = key_from_diffusers(component, stored)
            except ValueError:  # a tensor with no official name: reported as unexpected, under its own name
                key = f"{component}.{stored}"
            merged.key_to_file[key], merged.shapes[key] = part.key_to_file[stored], shape
            merged.dtypes[key], merged.stored_names[key] = part.dtypes[stored], stored
    return merged


def has_silence_latent(folder: Path) -> bool:
    component = Path(folder) / SILENCE_COMPONENT
    return (component / CONFIG_FILE).is_file() and SILENCE_LATENT in find_weight_files(component, WEIGHTS_NAME).shapes


def read_silence_latent(folder: Path, config: ModelConfig) -> torch.Tensor:
    """The condition encoder's `silence_latent` buffer, [1, T, C] float32 (already time-major there)."""
    weights = find_weight_files(Path(folder) / SILENCE_COMPONENT, WEIGHTS_NAME)
    path = weights.key_to_file.get(SILENCE_LATENT)
    if path is None:
        raise ModelLoadError(f"the condition encoder has no {SILENCE_LATENT} tensor", path=Path(folder) / SILENCE_COMPONENT,
                             fix="convert the pipeline again from an official folder that has silence_latent.pt")
    try:
        with safe_open(str(path), framework="pt") as handle:
            tensor = handle.get_tensor(SILENCE_LATENT).float()
    except (SafetensorError, OSError) as err:
        raise ModelLoadError(f"cannot read {SILENCE_LATENT} ({err})", path=path) from err
    channels = config.audio_acoustic_hidden_dim
    if tensor.dim() != 3 or tensor.shape[0] != 1 or tensor.shape[2] != channels:
        raise ModelLoadError(f"{SILENCE_LATENT} has shape {list(tensor.shape)}; expected [1, frames, {channels}]",
                             path=path)
    if not bool(tensor.any()):  # diffusers' placeholder before a converter fills it in
        raise ModelLoadError(f"{SILENCE_LATENT} is all zeros (the placeholder diffusers builds, never filled in)",
                             path=path, fix="convert the pipeline again from an official folder with silence_latent.pt")
    return tensor


def tokenizer_folder(text_encoder: Path) -> Path:
    """Where the tokenizer of `text_encoder` lives: in a pipeline its own `tokenizer/` component, else the folder itself."""
    text_encoder = Path(text_encoder)
    root = text_encoder.parent
    if text_encoder.name == TEXT_ENCODER and is_pipeline(root) and (root / TOKENIZER).is_dir():
        return root / TOKENIZER
    return text_encoder


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelLoadError(f"cannot read {path.name} ({err})", path=path) from err
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path.name} must hold a JSON object", path=path)
    return data
