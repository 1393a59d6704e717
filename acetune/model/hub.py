"""Turn a user's checkpoint argument into a local folder: a path, or a Hugging Face Hub repo id.

Which one it is is decided here, without the network (`locate_checkpoint`), so that a misspelt
local path is never sent to the Hub as a repo id (someone could publish a repo under that name):
- a `Path` object, and any path that exists, is local;
- `hf://owner/name[/subfolder]` is always the Hub (the form huggingface_hub's HfFileSystem uses);
- a path-like argument is local: it starts with `.`, `~` or `/`, holds a backslash or a drive
  colon, is a single name, or its first folder exists here (`checkpoints/acestep-v15-turbx` when
  `checkpoints/` exists is a missing local folder, not a repo);
- what is left is a Hub repo when it has the `owner/name` form that huggingface_hub's
  `validate_repo_id` accepts. A third part names a subfolder only of the bundles listed in
  `DEFAULT_SUBFOLDERS` (`ACE-Step/Ace-Step1.5/acestep-v15-base`); for other repos `a/b/c` is a
  local path, and a subfolder is written `hf://owner/name/subfolder`.

`ACE-Step/Ace-Step1.5` is the official bundle; its DiT lives in the `acestep-v15-turbo`
subfolder, which is used when no subfolder is named. Only weights, configs and the silence
latent are fetched: acetune never runs code from a checkpoint, so `*.py` files are not
downloaded. A diffusers pipeline repo (model_index.json) is fetched the same way, with its
component folders.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from acetune.errors import ModelLoadError
from acetune.model.diffusers_layout import is_pipeline

MAIN_BUNDLE = "ACE-Step/Ace-Step1.5"
DEFAULT_SUBFOLDERS = {MAIN_BUNDLE: "acestep-v15-turbo"}  # bundles of model folders: `repo/subfolder` allowed
FETCHED = ["*.json", "*.safetensors", "silence_latent.pt"]
CHECKPOINT_MARKER = "config.json"
HUB_SCHEME = "hf://"


@dataclass(frozen=True)
class CheckpointSource:
    """Where a checkpoint argument points: a local path, or a Hub repo and a subfolder in it."""

    path: Path | None = None
    repo_id: str | None = None
    subfolder: str = ""

    def describe(self) -> str:
        """What a command prints before it reads or downloads anything."""
        if self.repo_id is None:
            return f"local folder {self.path}"
        inside = f" (subfolder {self.subfolder})" if self.subfolder else ""
        return f"{self.repo_id}{inside} from the Hugging Face Hub"


def locate_checkpoint(source: str | Path | CheckpointSource) -> CheckpointSource:
    """Local path or Hub repo, by the rules of the module docstring; nothing is downloaded."""
    if isinstance(source, CheckpointSource):
        return source
    if isinstance(source, Path):
        return CheckpointSource(path=source.expanduser())
    if source.startswith(HUB_SCHEME):
        hub = _hub_source(source.removeprefix(HUB_SCHEME), explicit=True)
        if hub is None:
            raise ModelLoadError(f"{source!r} is not a Hub repo id", fix=f"write {HUB_SCHEME}owner/name[/subfolder]")
        return hub
    path = Path(source).expanduser()
    if path.exists() or _path_like(source):
        return CheckpointSource(path=path)
    return _hub_source(source, explicit=False) or CheckpointSource(path=path)


def _path_like(text: str) -> bool:
    parts = text.split("/")
    return (text.startswith((".", "~", "/")) or "\\" in text or ":" in text or len(parts) < 2
            or Path(parts[0]).expanduser().exists())


def _hub_source(text: str, *, explicit: bool) -> CheckpointSource | None:
    """`owner/name[/subfolder]` as a Hub source, or None when it is not one."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    owner, _, rest = text.partition("/")
    name, _, subfolder = rest.partition("/")
    repo_id = f"{owner}/{name}"
    if not owner or not name or (subfolder and not all(subfolder.split("/"))):
        return None
    if subfolder and not explicit and repo_id not in DEFAULT_SUBFOLDERS:
        return None
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        return None
    return CheckpointSource(repo_id=repo_id, subfolder=subfolder or DEFAULT_SUBFOLDERS.get(repo_id, ""))


def resolve_checkpoint(source: str | Path | CheckpointSource, *,
                       on_download: Callable[[CheckpointSource], None] | None = None) -> Path:
    """A local checkpoint folder for `source`, downloading from the Hub when it names a repo
    (`on_download` is told first, so a command can say so before a long download)."""
    where = locate_checkpoint(source)
    if where.repo_id is None:
        if not where.path.exists():
            raise _not_found(where.path, str(source))
        return _checked_folder(where.path)
    if on_download is not None:
        on_download(where)
    return _checked_folder(download(where))


def download(where: CheckpointSource) -> Path:
    """Fetch a Hub repo (only the subfolder, if one is named) with huggingface_hub; a plain message when that
    is impossible."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    patterns = [f"{where.subfolder}/{p}" for p in FETCHED] if where.subfolder else FETCHED
    spec = "/".join(filter(None, (where.repo_id, where.subfolder)))
    try:
        root = Path(snapshot_download(where.repo_id, allow_patterns=patterns))
    except (OSError, HfHubHTTPError, ValueError) as err:
        raise ModelLoadError(
            f"could not download {spec} from the Hugging Face Hub: {type(err).__name__}: {str(err).splitlines()[0]}",
            fix="check the repo id and your internet connection (and HF_TOKEN for gated repos), "
                "or download the checkpoint yourself and pass its local folder",
        ) from err
    return root / where.subfolder if where.subfolder else root


def _not_found(path: Path, text: str) -> ModelLoadError:
    """A missing local path, with the closest names in the nearest folder that exists."""
    parent = next((p for p in path.absolute().parents if p.is_dir()), None)
    names = sorted(p.name for p in parent.iterdir()) if parent is not None else []
    wanted = path.absolute().relative_to(parent).parts[0] if parent is not None else path.name
    close = [parent / c for c in difflib.get_close_matches(wanted, names, n=3)]
    shown = [os.path.relpath(c) if not path.is_absolute() else str(c) for c in close]
    hint = f"did you mean {', '.join(shown)}? " if close else ""
    hub = f"; a Hub repo is written {HUB_SCHEME}owner/name[/subfolder]" if "/" in text else ""
    return ModelLoadError("no such file or folder (a local path: it was not looked up on the Hugging Face Hub)",
                          path=path, fix=f"{hint}pass an existing ACE-Step model folder{hub}")


def _checked_folder(path: Path) -> Path:
    if not path.is_dir():
        raise ModelLoadError("expected a checkpoint folder, got a file", path=path,
                             fix="pass the folder that holds config.json and model.safetensors")
    if (path / CHECKPOINT_MARKER).is_file() or is_pipeline(path):
        return path
    candidates = sorted(p.name for p in path.iterdir() if (p / CHECKPOINT_MARKER).is_file() or is_pipeline(p))
    hint = f"it holds model folders {', '.join(candidates)}; pass one of those" if candidates else \
        "pass the folder that holds config.json and model.safetensors (e.g. checkpoints/acestep-v15-turbo)"
    raise ModelLoadError("this folder is not an ACE-Step checkpoint (no config.json)", path=path, fix=hint)
