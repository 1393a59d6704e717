"""Save an attached adapter as an inference-ready folder, and load any such folder back.

Folder contents (flat; `load_adapter` also finds them in a run's nested `adapter/`, see locate.py):
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
from acetune.adapters.kinds import FULL, KINDS, LYCORIS, PEFT, UPSTREAM_CONFIGS
from acetune.adapters.locate import locate
from acetune.adapters.targets import require_plain_decoder
from acetune.config import AdapterKind
from acetune.errors import ConfigError, ModelLoadError

CONFIG_KEY = "acetune_adapter_config"
_RESERVED = {"format", "algo", CONFIG_KEY, DIFFUSERS_KEY, *UPSTREAM_CONFIGS}

_WRITERS = {PEFT: peft_backend.save_peft, LYCORIS: lycoris_backend.save_lycoris, FULL: full.save_full}


def _reader(kind: AdapterKind):
    """The function loading `kind`'s folder onto a decoder: loader(decoder, folder)."""
    if KINDS[kind].backend == LYCORIS:
        return partial(lycoris_backend.load_lycoris, kind=kind)
    return {PEFT: peft_backend.load_peft, FULL: full.load_full}[KINDS[kind].backend]


_READERS = {KINDS[kind].marker: _reader(kind) for kind in AdapterKind}  # the file marking a format -> its loader


def save_adapter(attached: AttachedAdapter, folder: str | Path, *, metadata: dict[str, str] | None = None,
                 overwrite: bool = False) -> Path:
    """Write `attached` into `folder`, atomically: written into a staging folder beside it, then renamed.

    An existing non-empty folder is refused unless `overwrite=True`, in which case it is
    replaced only once the new one is complete. `metadata` (str -> str) goes into the weights
    file's safetensors header.
    """
    extra = _checked_metadata(metadata or {})
    header = {CONFIG_KEY: config_to_json(attached.config), **extra}
    write = _WRITERS[KINDS[attached.kind].backend]
    return write_folder_atomic(Path(folder), lambda staging: write(attached, staging, header),
                               overwrite=overwrite)


def load_adapter(decoder: nn.Module, folder: str | Path) -> AttachedAdapter:
    """Attach the adapter saved in `folder` to a fresh `decoder` and load its weights strictly.

    The folder is found as inference finds it (`locate`: the folder, a run's nested `adapter/`,
    or a path to one of its files); its format from the files (adapter_config.json,
    lokr/loha_weights.safetensors, decoder.safetensors). Every failure is a `ModelLoadError`
    naming the file, and leaves the decoder as it was.
    """
    found = locate(folder)
    reader = _READERS.get(found.marker)
    if reader is None:
        raise ModelLoadError(f"{found.weights.name} is not an adapter acetune can train on (expected one of "
                             f"{', '.join(_READERS)})", path=found.weights,
                             fix="pass a folder that acetune train (save_adapter) wrote; single files apply "
                                 "with `acetune generate --adapter`")
    require_plain_decoder(decoder)
    return reader(decoder, found.weights.parent)


def _checked_metadata(metadata: dict[str, str]) -> dict[str, str]:
    bad = [key for key, value in metadata.items() if not isinstance(key, str) or not isinstance(value, str)]
    if bad:
        raise ConfigError(f"adapter metadata must map strings to strings; not so for {bad[:3]}")
    clash = sorted(_RESERVED & set(metadata))
    if clash:
        raise ConfigError(f"adapter metadata keys {clash} are reserved for the format itself")
    return dict(metadata)
