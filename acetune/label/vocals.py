"""Optional vocal isolation before Whisper: demucs splits the song into stems and only "vocals" is transcribed.

Whisper mishears words under loud drums and guitars and sometimes "transcribes" instruments; a vocals stem
gives it the singing alone. The separator is demucs (extra `acetune[separate]`), loaded through its own
API (`demucs.pretrained.get_model`: a pretrained name such as `htdemucs`, downloaded by demucs on first
use, or a local `.th` model / `.yaml` bag file, demucs' `--repo` layout) and run with `demucs.apply.apply_model`.
As demucs' own `Separator.separate_tensor` does, the mix is standardised by the mean and standard deviation
of its mono downmix before the model and the stems are scaled back after it. Our choice: `shifts=0` (no
random time shifts), so a song always gives the same stem and the same lyrics.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from acetune.errors import ConfigError, ModelLoadError

DEFAULT_SEPARATOR = "htdemucs"  # demucs' default model: Hybrid Transformer Demucs, 4 stems
VOCALS = "vocals"


class VocalIsolator:
    """A loaded demucs model (or bag of models) that returns a song's vocals stem."""

    def __init__(self, model: Any, name: str, device: torch.device):
        if VOCALS not in model.sources:
            raise ModelLoadError(f"separator {name} has no vocals stem (its stems: {', '.join(model.sources)})",
                                 path=name, fix=f"use a model that separates vocals, e.g. --separator {DEFAULT_SEPARATOR}")
        self.model = model.to(device).eval()
        self.name = name
        self.device = device

    @property
    def samplerate(self) -> int:
        """The rate the model runs at (44.1 kHz for the released demucs models)."""
        return int(self.model.samplerate)

    def vocals(self, stereo: np.ndarray) -> np.ndarray:
        """[2, S] at `samplerate` -> the vocals stem, [model channels, S] at `samplerate`."""
        from demucs.apply import apply_model
        from demucs.audio import convert_audio_channels

        wav = convert_audio_channels(torch.from_numpy(stereo), self.model.audio_channels)
        ref = wav.mean(0)
        mean, std = ref.mean(), ref.std() + 1e-8
        with torch.inference_mode():
            stems = apply_model(self.model, ((wav - mean) / std)[None], shifts=0, split=True, device=self.device)
        vocals = stems[0, list(self.model.sources).index(VOCALS)] * std + mean
        return vocals.float().cpu().numpy()


def open_separator(separator: str | None, device: torch.device) -> VocalIsolator:
    """`--separator`: a demucs model name (default htdemucs) or a local `.th` / `.yaml` file."""
    import_demucs()
    from demucs.pretrained import get_model
    from demucs.repo import ModelLoadingError

    name = separator or DEFAULT_SEPARATOR
    local = Path(name)
    if local.suffix in (".th", ".yaml") and not local.is_file():
        raise ModelLoadError("separator model file not found", path=local,
                             fix=f"pass --separator a demucs .th/.yaml file or a model name, e.g. {DEFAULT_SEPARATOR}")
    try:
        if local.suffix in (".th", ".yaml"):
            signature = local.stem.rsplit("-", 1)[0] if local.suffix == ".th" else local.stem
            model = get_model(signature, repo=local.resolve().parent)
        else:
            model = get_model(name)
    except (ModelLoadingError, OSError, ValueError, KeyError) as err:
        raise ModelLoadError(f"cannot load the separator ({type(err).__name__}: {str(err).splitlines()[0]})",
                             path=name, fix=f"pass --separator a demucs model name (e.g. {DEFAULT_SEPARATOR}, "
                                            "htdemucs_ft) or a local .th/.yaml file") from err
    return VocalIsolator(model, local.name if local.suffix else name, device)


def import_demucs() -> ModuleType:
    """demucs, or a ConfigError saying how to install it (it is an optional extra)."""
    try:
        import demucs.apply
        import demucs.pretrained
    except ImportError:
        raise ConfigError("--isolate-vocals needs the demucs stem separator",
                          fix="pip install 'acetune[separate]', or leave --isolate-vocals out") from None
    return demucs
