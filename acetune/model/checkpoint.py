"""Load an ACE-Step 1.5 model from a checkpoint folder (or Hub repo id) and save one back.

Loading builds the model on the meta device and assigns the file's tensors, so a 2B model
is never allocated twice. Nothing is ever written into a checkpoint folder by loading.
A folder is either the official layout (config.json, model.safetensors, silence_latent.pt) or
a diffusers `AceStepPipeline` (model_index.json and component folders, see diffusers_layout);
`read_model_config`, `checkpoint_weights` and `load_silence_latent` read both.
"""

from __future__ import annotations

import json
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from acetune.atomic import check_folder_target, write_folder_atomic
from acetune.errors import CheckpointWriteError, ModelLoadError
from acetune.model.acestep import AceStepModel
from acetune.model import diffusers_layout
from acetune.model.config import ModelConfig
from acetune.model.diffusers_keys import COMPONENTS as DIFFUSERS_COMPONENTS, NULL_CONDITION
from acetune.model.hub import resolve_checkpoint
from acetune.model.keycheck import compare_keys, raise_if_mismatched
from acetune.model.masks import AttentionOptions
from acetune.model.variant import Variant, detect_variant
from acetune.model.weights import (CONFIG_FILE, INDEX_FILE, SINGLE_FILE, WeightFiles, dtype_name, find_weight_files,
                                   parse_dtype, read_tensors)

SILENCE_FILE = "silence_latent.pt"
COMPONENTS = ("decoder", "encoder", "tokenizer", "detokenizer", "null_condition_emb")


@dataclass
class LoadedModel:
    model: AceStepModel
    config: ModelConfig
    variant: Variant
    folder: Path
    silence_latent: torch.Tensor | None  # [1, T, C] time-major, or None if the folder has none


def build_model(config: ModelConfig, options: AttentionOptions | None = None, *, meta: bool = False) -> AceStepModel:
    """Construct the module tree; on the meta device when weights will be assigned from a file."""
    if not meta:
        return AceStepModel(config, options)
    with torch.device("meta"):
        return AceStepModel(config, options)


def expected_shapes(model: AceStepModel) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def read_model_config(folder: Path) -> ModelConfig:
    """The model's `ModelConfig`: config.json, or a diffusers pipeline's component configs."""
    if diffusers_layout.is_pipeline(folder):
        return diffusers_layout.read_config(folder)
    return ModelConfig.from_json_file(Path(folder) / CONFIG_FILE)


def checkpoint_weights(folder: Path) -> WeightFiles:
    """Every weight's file, shape and dtype under its official name, from headers only."""
    if diffusers_layout.is_pipeline(folder):
        return diffusers_layout.find_weights(folder)
    return find_weight_files(Path(folder))


def model_folders(folder: Path) -> tuple[Path, ...]:
    """The folders whose files make up the model: the folder itself, plus a pipeline's model component folders."""
    if not diffusers_layout.is_pipeline(folder):
        return (Path(folder),)
    return (Path(folder), *(Path(folder) / c for c in diffusers_layout.present_components(folder)))


def has_silence_latent(folder: Path) -> bool:
    if diffusers_layout.is_pipeline(folder):
        return diffusers_layout.has_silence_latent(folder)
    return (Path(folder) / SILENCE_FILE).is_file()


def load_model(
    source: str | Path,
    *,
    dtype: str | torch.dtype = "fp32",
    device: str | torch.device = "cpu",
    strict: bool = True,
    components: tuple[str, ...] = COMPONENTS,
    options: AttentionOptions | None = None,
    variant: str | None = None,
) -> LoadedModel:
    """Load config, weights and silence latent. `components` limits which top-level parts are read
    (e.g. ("decoder", "null_condition_emb") for training); the others stay on the meta device."""
    unknown = sorted(set(components) - set(COMPONENTS))
    if unknown:
        raise ValueError(f"unknown components {unknown}; choose from {COMPONENTS}")
    torch_dtype = parse_dtype(dtype)
    folder = resolve_checkpoint(source)
    config = read_model_config(folder)
    found_variant = detect_variant(config, variant)
    weights = checkpoint_weights(folder)
    model = build_model(config, options, meta=True)

    def selected(key: str) -> bool:
        return key.split(".", 1)[0] in components

    expected = {k: s for k, s in expected_shapes(model).items() if selected(k)}
    found = {k: s for k, s in weights.shapes.items() if selected(k) or k.split(".", 1)[0] not in COMPONENTS}
    report = compare_keys(expected, found)
    raise_if_mismatched(report, _report_path(folder, weights), strict)
    tensors = read_tensors(weights, [k for k in expected if k in found], torch_dtype, device)
    model.load_state_dict(tensors, strict=False, assign=True)
    if "tokenizer" in components:
        model.tokenizer.quantizer.to(device=device)  # its FSQ constants were built eagerly on the CPU
    silence = load_silence_latent(folder, config) if has_silence_latent(folder) else None
    return LoadedModel(model, config, found_variant, folder, None if silence is None else silence.to(device))


def _report_path(folder: Path, weights: WeightFiles) -> Path:
    """The file a key mismatch is reported against: the single weights file, else the folder's index or the pipeline."""
    if len(weights.files) == 1:
        return weights.files[0]
    return folder if diffusers_layout.is_pipeline(folder) else folder / INDEX_FILE


def load_silence_latent(folder: Path, config: ModelConfig) -> torch.Tensor:
    """The silence latent as [1, T, C] float32: `silence_latent.pt` ([1, C, T], channel-first, read safely and
    transposed), or a diffusers pipeline's `condition_encoder.silence_latent` buffer."""
    if diffusers_layout.is_pipeline(folder):
        return diffusers_layout.read_silence_latent(folder, config)
    path = Path(folder) / SILENCE_FILE
    try:
        tensor = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError) as err:
        # weights_only=True refuses anything but plain tensors and containers (no code runs)
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(f"cannot read the silence latent ({first_line})", path=path,
                             fix="download silence_latent.pt again from the model repository") from err
    channels = config.audio_acoustic_hidden_dim
    if not isinstance(tensor, torch.Tensor) or tensor.dim() != 3 or tensor.shape[0] != 1 or tensor.shape[1] != channels:
        shape = list(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise ModelLoadError(f"silence latent has shape {shape}; expected [1, {channels}, frames]", path=path)
    return tensor.float().transpose(1, 2).contiguous()


def save_model(
    model: AceStepModel,
    folder: str | Path,
    *,
    silence_latent: torch.Tensor | None = None,  # [1, T, C] time-major
    dtype: str | torch.dtype | None = None,
    copy_from: Path | None = None,
    overwrite: bool = False,
    max_shard_size: int | str = "5GB",
) -> Path:
    """Write an official-layout folder: config.json, model.safetensors (or shards + index), silence_latent.pt.

    `copy_from` copies the other files of a source checkpoint (e.g. its modeling code, which the
    official app needs) byte for byte. The folder appears atomically (written beside, then renamed);
    an existing folder is replaced only with `overwrite=True`.
    """
    target = Path(folder)
    check_folder_target(target, overwrite=overwrite)  # before minutes of converting weights
    state, save_dtype = state_for_saving(model, dtype, target)
    config = model.config
    if "dtype" in config.extra or "torch_dtype" in config.extra:
        config = ModelConfig.from_dict({**config.to_dict(), "dtype": dtype_name(save_dtype)})

    def fill(staging: Path) -> None:
        if copy_from is not None:
            _copy_side_files(Path(copy_from), staging)
        config.write_json(staging / CONFIG_FILE)
        write_weights(state, staging, max_shard_size)
        if silence_latent is not None:
            # The official layout stores one plain tensor with torch.save; it is read back with weights_only=True.
            torch.save(silence_latent.detach().cpu().float().transpose(1, 2).contiguous(), staging / SILENCE_FILE)

    return write_folder_atomic(target, fill, overwrite=overwrite)


def state_for_saving(model: AceStepModel, dtype: str | torch.dtype | None, target: Path,
                     components: tuple[str, ...] = COMPONENTS) -> tuple[dict[str, torch.Tensor], torch.dtype]:
    """The official-named CPU state dict of `components` in the save dtype (default: the model's).

    Refused while any tensor of those components is unloaded (still on the meta device).
    """
    state = {k: v for k, v in model.state_dict().items() if k.split(".", 1)[0] in components}
    meta = [k for k, v in state.items() if v.is_meta]
    if meta:
        raise CheckpointWriteError(f"{len(meta)} tensors were never loaded (e.g. {meta[0]}); load every component "
                                   "before saving a full model", path=target)
    save_dtype = parse_dtype(dtype) if dtype is not None else model.dtype
    return {k: v.detach().to(device="cpu", dtype=save_dtype).contiguous() for k, v in state.items()}, save_dtype


def available_components(folder: Path) -> tuple[str, ...]:
    """The COMPONENTS a checkpoint folder holds: all of them officially; a pipeline may lack the audio tokenizers."""
    if not diffusers_layout.is_pipeline(folder):
        return COMPONENTS
    present = set(diffusers_layout.present_components(folder))
    parts = {part for part, component in DIFFUSERS_COMPONENTS.items() if component in present}
    return tuple(c for c in COMPONENTS if c in parts or (c == NULL_CONDITION and "encoder" in parts))


def write_weights(state: dict[str, torch.Tensor], folder: Path, max_shard_size: int | str,
                  single_name: str = SINGLE_FILE) -> None:
    """One `model.safetensors` (or `single_name`), or `model-0000i-of-0000n.safetensors` + `model.safetensors.index.json`
    past `max_shard_size`.

    The shard plan comes from huggingface_hub (the Hub's own naming and index format).
    """
    from huggingface_hub import split_torch_state_dict_into_shards
    from safetensors.torch import save_file

    stem = single_name.removesuffix(".safetensors")
    plan = split_torch_state_dict_into_shards(state, filename_pattern=stem + "{suffix}.safetensors",
                                              max_shard_size=max_shard_size)
    for filename, keys in plan.filename_to_tensors.items():
        save_file({k: state[k] for k in keys}, str(folder / filename), metadata={"format": "pt"})
    if plan.is_sharded:
        index = {"metadata": {**plan.metadata}, "weight_map": plan.tensor_to_filename}
        (folder / f"{single_name}.index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n",
                                                         encoding="utf-8")


def _copy_side_files(source: Path, staging: Path) -> None:
    """Copy everything except the weights and config we write ourselves."""
    skip = {CONFIG_FILE, SINGLE_FILE, INDEX_FILE}
    for item in source.iterdir():
        if item.name in skip or (item.name.startswith("model-") and item.suffix == ".safetensors"):
            continue
        if item.is_file():
            shutil.copy2(item, staging / item.name)
