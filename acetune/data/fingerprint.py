"""What made a cache, so it is never used with another checkpoint or other preprocessing options.

Checkpoint digests are cheap by design: each weight file contributes its size, its safetensors
header and three 1 MiB samples (start, middle, end), plus every config file in full. This reads
a few MB of a 4.8 GB checkpoint yet changes with any re-save, fine-tune or different release.
It is not a cryptographic proof that every byte is equal.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acetune import __version__
from acetune.atomic import write_json_atomic
from acetune.data.cache import CACHE_FORMAT_VERSION, FINGERPRINT_FILE
from acetune.errors import CacheError, CacheMismatchError, echoed
from acetune.model.bundle import Bundle
from acetune.model.checkpoint import model_folders, read_model_config
from acetune.model.text_encoder import tokenizer_hash
from acetune.model.variant import detect_variant
from acetune.model.weights import read_weight_header

SAMPLE_BYTES = 1 << 20
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".bin")


def file_digest(path: Path) -> str:
    """Size + safetensors header + three 1 MiB samples of the file. A safetensors file whose header does not
    parse or does not cover the file is a `ModelLoadError` naming it: the digest of a damaged download would
    only say "the cache was made by another checkpoint"."""
    if path.suffix == ".safetensors":
        read_weight_header(path)
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        if path.suffix == ".safetensors" and size >= 8:
            header_len = int.from_bytes(handle.read(8), "little")
            digest.update(handle.read(min(header_len, size - 8)))
        for offset in (0, max(0, size // 2 - SAMPLE_BYTES // 2), max(0, size - SAMPLE_BYTES)):
            handle.seek(offset)
            digest.update(handle.read(SAMPLE_BYTES))
    return digest.hexdigest()


def model_digest(dit: Path) -> str:
    """`folder_digest` of the DiT folder; of a diffusers pipeline, of its root and model component folders."""
    folders = model_folders(dit)
    if len(folders) == 1:
        return folder_digest(folders[0])
    return hashlib.sha256("".join(f"{f.name}:{folder_digest(f)}" for f in folders).encode()).hexdigest()


def folder_digest(folder: Path) -> str:
    """Digest of a model folder: JSON configs in full, weight files by `file_digest`; code files ignored."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).iterdir()):
        if path.suffix == ".json":
            digest.update(path.name.encode() + path.read_bytes())
        elif path.suffix in WEIGHT_SUFFIXES:
            digest.update(path.name.encode() + file_digest(path).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Fingerprint:
    variant: str
    model: str  # DiT folder digest (condition encoder and silence latent live there)
    vae: str
    text_encoder: str
    tokenizer: str
    options: dict[str, Any]  # preprocessing options that change the tensors
    format_version: int = CACHE_FORMAT_VERSION
    acetune_version: str = __version__

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version, "acetune_version": self.acetune_version, "variant": self.variant,
            "model": self.model, "vae": self.vae, "text_encoder": self.text_encoder, "tokenizer": self.tokenizer,
            "options": self.options,
        }

    def differences(self, other: "Fingerprint", *, include_options: bool = True) -> list[str]:
        """Readable lines 'field: cache X, now Y' for every field that differs (version excluded)."""
        mine, theirs = self.to_json(), other.to_json()
        lines = []
        for key in ("variant", "model", "vae", "text_encoder", "tokenizer"):
            if mine[key] != theirs[key]:
                lines.append(f"{key}: cache {_short(mine[key])}, now {_short(theirs[key])}")
        if include_options:
            for key in sorted(set(mine["options"]) | set(theirs["options"])):
                if mine["options"].get(key) != theirs["options"].get(key):
                    lines.append(f"options.{key}: cache {mine['options'].get(key)!r}, now {theirs['options'].get(key)!r}")
        return lines


def _short(value: Any) -> str:
    return value[:12] if isinstance(value, str) and len(value) == 64 else str(value)


def bundle_fingerprint(bundle: Bundle, options: dict[str, Any]) -> Fingerprint:
    """The fingerprint a cache made from `bundle` with `options` must carry."""
    return Fingerprint(variant=detect_variant(read_model_config(bundle.dit)).name,
                       model=model_digest(bundle.dit), vae=folder_digest(bundle.vae),
                       text_encoder=folder_digest(bundle.text_encoder), tokenizer=tokenizer_hash(bundle.text_encoder),
                       options=options)


def write_fingerprint(folder: Path, fingerprint: Fingerprint) -> None:
    write_json_atomic(Path(folder) / FINGERPRINT_FILE, fingerprint.to_json())


def read_fingerprint(folder: Path) -> Fingerprint:
    path = Path(folder) / FINGERPRINT_FILE
    if not path.is_file():
        raise CacheError("fingerprint.json is missing: this cache cannot be matched to a checkpoint", path=Path(folder),
                         fix="rebuild the cache with `acetune preprocess --rebuild`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        found = Fingerprint(variant=data["variant"], model=data["model"], vae=data["vae"],
                            text_encoder=data["text_encoder"], tokenizer=data["tokenizer"], options=data["options"],
                            format_version=data["format_version"], acetune_version=data["acetune_version"])
    except (ValueError, RecursionError, UnicodeDecodeError, KeyError, TypeError) as err:  # ValueError: bad JSON
        raise CacheError(f"fingerprint.json is unreadable ({type(err).__name__}: {echoed(str(err))})", path=path,
                         fix="rebuild the cache with `acetune preprocess --rebuild`") from err
    digests = (found.variant, found.model, found.vae, found.text_encoder, found.tokenizer)
    if not all(isinstance(value, str) for value in digests) or not isinstance(found.options, dict):
        raise CacheError("fingerprint.json is malformed (digests must be text, options a table)", path=path,
                         fix="rebuild the cache with `acetune preprocess --rebuild`")
    return found


def require_match(cache_folder: Path, expected: Fingerprint, *, include_options: bool = True) -> None:
    """Raise CacheMismatchError listing every difference between the cache and `expected`."""
    found = read_fingerprint(cache_folder)
    lines = found.differences(expected, include_options=include_options)
    if lines:
        raise CacheMismatchError(
            "this cache was made by another checkpoint or with other options:\n  " + "\n  ".join(lines),
            path=Path(cache_folder),
            fix="rerun `acetune preprocess` with this checkpoint (--rebuild to replace the cache), "
                "or pass the checkpoint the cache was made with")
