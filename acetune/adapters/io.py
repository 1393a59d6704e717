"""Save an attached adapter as an inference-ready folder, and load any such folder back.

Folder contents (flat, no nested `adapter/`):
- lora/dora: `adapter_config.json` + `adapter_model.safetensors` (PEFT's own files; the ACE-Step
  app loads them with `PeftModel.from_pretrained(decoder, folder)`);
- lokr/loha: `lokr_weights.safetensors` / `loha_weights.safetensors` (LyCORIS's file, with the
  `algo`, `format` and `<algo>_config` metadata the upstream loaders read);
- full: `decoder.safetensors` with official `decoder.*` keys.
Every weights file also carries `acetune_adapter_config` (the exact `AdapterConfig`) and the
caller's metadata in its safetensors header; a LoRA/DoRA file diffusers can read also carries
diffusers' `lora_adapter_metadata` (see diffusers_header).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from torch import nn

from acetune.adapters import full, lycoris_backend, peft_backend
from acetune.atomic import write_folder_atomic
from acetune.adapters.attached import AttachedAdapter
from acetune.adapters.config_json import config_to_json
from acetune.adapters.diffusers_header import METADATA_KEY as DIFFUSERS_KEY
from acetune.adapters.targets import require_plain_decoder
from acetune.config import AdapterKind
from acetune.errors import ConfigError, ModelLoadError

CONFIG_KEY = "acetune_adapter_config"
_RESERVED = {"format", "algo", CONFIG_KEY, "lokr_config", "loha_config", DIFFUSERS_KEY}

_WRITERS = {
    AdapterKind.LORA: peft_backend.save_peft,
    AdapterKind.DORA: peft_backend.save_peft,
    AdapterKind.LOKR: lycoris_backend.save_lycoris,
    AdapterKind.LOHA: lycoris_backend.save_lycoris,
    AdapterKind.FULL: full.save_full,
}

# the file that marks a format -> its loader(decoder, folder)
_READERS = {
    peft_backend.CONFIG_FILE: peft_backend.load_peft,
    lycoris_backend.WEIGHTS_FILES[AdapterKind.LOKR]: partial(lycoris_backend.load_lycoris, kind=AdapterKind.LOKR),
    lycoris_backend.WEIGHTS_FILES[AdapterKind.LOHA]: partial(lycoris_backend.load_lycoris, kind=AdapterKind.LOHA),
    full.WEIGHTS_FILE: full.load_full,
}


def save_adapter(attached: AttachedAdapter, folder: str | Path, *, metadata: dict[str, str] | None = None,
                 overwrite: bool = False) -> Path:
    """Write `attached` into `folder`, atomically: written into a staging folder beside it, then renamed.

    An existing non-empty folder is refused unless `overwrite=True`, in which case it is
    replaced only once the new one is complete. `metadata` (str -> str) goes into the weights
    file's safetensors header.
    """
    extra = _checked_metadata(metadata or {})
    header = {CONFIG_KEY: config_to_json(attached.config), **extra}
    return write_folder_atomic(Path(folder), lambda staging: _WRITERS[attached.kind](attached, staging, header),
                               overwrite=overwrite)


def load_adapter(decoder: nn.Module, folder: str | Path) -> AttachedAdapter:
    """Attach the adapter saved in `folder` to a fresh `decoder` and load its weights strictly.

    The format is detected from the files (adapter_config.json, lokr/loha_weights.safetensors,
    decoder.safetensors). A path to one of those files is accepted for its folder. Every
    failure is a `ModelLoadError` naming the file, and leaves the decoder as it was.
    """
    path = Path(folder)
    if path.is_file() and path.name in _READERS:
        path = path.parent
    if not path.is_dir():
        raise ModelLoadError("no adapter folder here", path=path, fix="pass the folder that save_adapter wrote")
    found = [name for name in _READERS if (path / name).is_file()]
    if not found:
        raise ModelLoadError(f"no adapter found (expected one of {', '.join(_READERS)})", path=path)
    if len(found) > 1:
        raise ModelLoadError(f"more than one adapter format here ({', '.join(found)})", path=path,
                             fix="keep one adapter per folder")
    require_plain_decoder(decoder)
    return _READERS[found[0]](decoder, path)


def _checked_metadata(metadata: dict[str, str]) -> dict[str, str]:
    bad = [key for key, value in metadata.items() if not isinstance(key, str) or not isinstance(value, str)]
    if bad:
        raise ConfigError(f"adapter metadata must map strings to strings; not so for {bad[:3]}")
    clash = sorted(_RESERVED & set(metadata))
    if clash:
        raise ConfigError(f"adapter metadata keys {clash} are reserved for the format itself")
    return dict(metadata)
