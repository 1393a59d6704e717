"""Write an ACE-Step model as a diffusers `AceStepPipeline` folder that `AceStepPipeline.from_pretrained` loads.

The model's weights go to their components under diffusers' names (diffusers_keys), each with
its config.json (diffusers_config); the silence latent becomes the condition encoder's
`silence_latent` buffer, kept in float32 so reading it back is lossless. The VAE and text encoder
are copied byte for byte (both are already diffusers/transformers folders), the tokenizer files go
to `tokenizer/`, and a scheduler config is written: `FlowMatchEulerDiscreteScheduler` with
`num_train_timesteps=1` and `shift=1.0`, what the pipeline's docstring asks for (it computes its
own sigmas). The folder appears atomically; an existing one is replaced only with `overwrite`.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from acetune.atomic import check_folder_target, write_folder_atomic
from acetune.errors import CheckpointWriteError
from acetune.model.acestep import AceStepModel
from acetune.model.bundle import Bundle
from acetune.model.checkpoint import COMPONENTS, state_for_saving, write_weights
from acetune.model.diffusers_config import CLASSES, component_configs
from acetune.model.diffusers_keys import SILENCE_COMPONENT, SILENCE_LATENT, key_to_diffusers
from acetune.model.diffusers_layout import (MODEL_INDEX, PIPELINE_CLASS, SCHEDULER, TEXT_ENCODER, TOKENIZER, VAE,
                                            WEIGHTS_NAME, is_pipeline, tokenizer_folder)
from acetune.model.text_encoder import TOKENIZER_FILES
from acetune.model.weights import CONFIG_FILE

OPTIONAL_PARTS = ("tokenizer", "detokenizer")  # the pipeline runs without them (no cover hints from audio)
SCHEDULER_CONFIG = "scheduler_config.json"
TEXT_ENCODER_CLASS = "Qwen3Model"  # the pipeline reads `.last_hidden_state`, as acetune's text encoder does


@dataclass(frozen=True)
class PipelineParts:
    """Where the pipeline's other components come from (an official bundle's folders, or another pipeline's)."""

    vae: Path
    text_encoder: Path
    tokenizer: Path  # the text encoder folder itself in the official layout
    scheduler: Path | None = None  # a pipeline's scheduler/ folder, copied; None writes the standard config


def parts_of_bundle(bundle: Bundle) -> PipelineParts:
    """The VAE, text encoder, tokenizer (and a pipeline's scheduler) of a resolved bundle, to copy."""
    scheduler = bundle.dit / SCHEDULER if is_pipeline(bundle.dit) and (bundle.dit / SCHEDULER).is_dir() else None
    return PipelineParts(bundle.vae, bundle.text_encoder, tokenizer_folder(bundle.text_encoder), scheduler)


def save_pipeline(model: AceStepModel, folder: str | Path, *, silence_latent: torch.Tensor | None, parts: PipelineParts,
                  dtype: str | torch.dtype | None = None, overwrite: bool = False,
                  max_shard_size: int | str = "5GB") -> Path:
    """Write `model` (with `silence_latent` [1, T, C] and the components in `parts`) as a pipeline folder.

    The audio tokenizer and detokenizer are written when loaded, and left out (they are optional
    components) when the model was loaded without them.
    """
    import diffusers

    target = Path(folder)
    check_folder_target(target, overwrite=overwrite)
    _check_parts(parts)
    if silence_latent is None:  # diffusers would fall back to a zero placeholder, which renders drones
        raise CheckpointWriteError("the model has no silence latent, which the pipeline's condition encoder needs",
                                   path=target, fix="load the model from a folder with silence_latent.pt")
    parts_present = tuple(c for c in COMPONENTS if c not in OPTIONAL_PARTS or _loaded(model, c))
    state, _ = state_for_saving(model, dtype, target, parts_present)
    tensors: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        component, name = key_to_diffusers(key)
        tensors.setdefault(component, {})[name] = value
    tensors[SILENCE_COMPONENT][SILENCE_LATENT] = silence_latent.detach().cpu().float().contiguous()
    configs = component_configs(model.config, diffusers.__version__)
    index = _model_index(sorted(tensors), _tokenizer_class(parts.tokenizer), diffusers.__version__)

    def fill(staging: Path) -> None:
        _write_json(staging / MODEL_INDEX, index)
        for component, component_tensors in tensors.items():
            (staging / component).mkdir()
            _write_json(staging / component / CONFIG_FILE, configs[component])
            write_weights(component_tensors, staging / component, max_shard_size, WEIGHTS_NAME)
        shutil.copytree(parts.vae, staging / VAE)
        shutil.copytree(parts.text_encoder, staging / TEXT_ENCODER)
        _copy_tokenizer(parts, staging / TOKENIZER)
        if parts.scheduler is not None:
            shutil.copytree(parts.scheduler, staging / SCHEDULER)
        else:
            (staging / SCHEDULER).mkdir()
            _write_json(staging / SCHEDULER / SCHEDULER_CONFIG, {
                "_class_name": "FlowMatchEulerDiscreteScheduler", "_diffusers_version": diffusers.__version__,
                "num_train_timesteps": 1, "shift": 1.0})

    return write_folder_atomic(target, fill, overwrite=overwrite)


def _check_parts(parts: PipelineParts) -> None:
    for name, path in (("VAE", parts.vae), ("text encoder", parts.text_encoder)):
        if not (path / CONFIG_FILE).is_file():
            raise CheckpointWriteError(f"the {name} to copy into the pipeline has no {CONFIG_FILE}", path=path)
    if not parts.tokenizer.is_dir():
        raise CheckpointWriteError("the tokenizer folder to copy into the pipeline is not there", path=parts.tokenizer)


def _loaded(model: AceStepModel, part: str) -> bool:
    return not any(p.is_meta for p in getattr(model, part).parameters())


def _model_index(components: list[str], tokenizer_class: str, version: str) -> dict:
    """model_index.json: each component's (library, class); the pipeline finds each in the folder of its name."""
    index = {"_class_name": PIPELINE_CLASS, "_diffusers_version": version}
    index.update({name: ["diffusers", CLASSES[name]] for name in components})
    index.update({VAE: ["diffusers", "AutoencoderOobleck"], TEXT_ENCODER: ["transformers", TEXT_ENCODER_CLASS],
                  TOKENIZER: ["transformers", tokenizer_class],
                  SCHEDULER: ["diffusers", "FlowMatchEulerDiscreteScheduler"]})
    return index


def _tokenizer_class(folder: Path) -> str:
    """The transformers class AutoTokenizer picks for `folder` (what the pipeline will instantiate)."""
    from transformers import AutoTokenizer

    return type(AutoTokenizer.from_pretrained(folder, trust_remote_code=False)).__name__


def _copy_tokenizer(parts: PipelineParts, target: Path) -> None:
    """A pipeline's own tokenizer/ is copied whole; from the official text encoder folder, its tokenizer files."""
    if parts.tokenizer != parts.text_encoder:
        shutil.copytree(parts.tokenizer, target)
        return
    target.mkdir()
    for name in TOKENIZER_FILES:
        if (parts.tokenizer / name).is_file():
            shutil.copy2(parts.tokenizer / name, target / name)


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

