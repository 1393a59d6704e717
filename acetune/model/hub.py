"""Turn a user's checkpoint argument into a local folder: a path, or a Hugging Face Hub repo id.

`ACE-Step/Ace-Step1.5` is the official bundle; its DiT lives in the `acestep-v15-turbo`
subfolder, which is used when no subfolder is named. `owner/repo/subfolder` picks another.
Only weights, configs and the silence latent are fetched: acetune never runs code from a
checkpoint, so `*.py` files are not downloaded. A diffusers pipeline repo (model_index.json)
is fetched the same way, with its component folders.
"""

from __future__ import annotations

from pathlib import Path

from acetune.errors import ModelLoadError
from acetune.model.diffusers_layout import is_pipeline

MAIN_BUNDLE = "ACE-Step/Ace-Step1.5"
DEFAULT_SUBFOLDERS = {MAIN_BUNDLE: "acestep-v15-turbo"}
FETCHED = ["*.json", "*.safetensors", "silence_latent.pt"]
CHECKPOINT_MARKER = "config.json"


def looks_like_repo_id(text: str) -> bool:
    parts = text.split("/")
    return (
        len(parts) >= 2
        and not text.startswith((".", "/", "~"))
        and "\\" not in text
        and all(parts)
        and ":" not in parts[0]
    )


def resolve_checkpoint(source: str | Path) -> Path:
    """A local checkpoint folder for `source`, downloading from the Hub when it names a repo."""
    path = Path(source).expanduser()
    if path.exists():
        return _checked_folder(path)
    text = str(source)
    if not looks_like_repo_id(text):
        raise ModelLoadError("no such file or folder", path=path,
                             fix="pass an ACE-Step model folder or a Hub repo id such as ACE-Step/Ace-Step1.5")
    return _checked_folder(download(text))


def download(spec: str) -> Path:
    """Fetch `owner/repo[/subfolder]` with huggingface_hub; a plain message when that is impossible."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    owner, repo, *rest = spec.split("/")
    repo_id = f"{owner}/{repo}"
    subfolder = "/".join(rest) or DEFAULT_SUBFOLDERS.get(repo_id, "")
    patterns = [f"{subfolder}/{p}" for p in FETCHED] if subfolder else FETCHED
    try:
        root = Path(snapshot_download(repo_id, allow_patterns=patterns))
    except (OSError, HfHubHTTPError, ValueError) as err:
        raise ModelLoadError(
            f"could not download {spec} from the Hugging Face Hub: {type(err).__name__}: {str(err).splitlines()[0]}",
            fix="check the repo id and your internet connection (and HF_TOKEN for gated repos), "
                "or download the checkpoint yourself and pass its local folder",
        ) from err
    return root / subfolder if subfolder else root


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
