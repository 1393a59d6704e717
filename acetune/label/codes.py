"""Audio -> the 5 Hz codes the LM reads: VAE latents (the preprocessing encoder) -> the DiT's FSQ tokenizer.

As upstream's `convert_src_audio_to_codes` (ace-step/ACE-Step-1.5, the DiT handler): the whole song at 48 kHz
stereo, no chunking or truncation, one code per 5 latent frames (200 ms); a silent file is refused. We take
the posterior mean of the VAE (not a sample), so a song always gives the same codes and a rerun is repeatable.
"""

from __future__ import annotations

from pathlib import Path

import torch

from acetune.audio import is_silent, load_audio
from acetune.errors import AudioError, ModelLoadError
from acetune.model import load_model
from acetune.model.bundle import resolve_bundle
from acetune.model.vae import encode_latents, load_vae


class AudioCoder:
    """Holds the VAE and the DiT's audio tokenizer (nothing else of the DiT is read)."""

    def __init__(self, checkpoint_dir: Path, *, device: torch.device, model: str | None = None):
        bundle = resolve_bundle(checkpoint_dir, model)
        self.device = device
        self.vae = load_vae(bundle.vae, dtype=torch.float32, device=device)
        loaded = load_model(bundle.dit, dtype="fp32", device=device, components=("tokenizer",))
        if loaded.silence_latent is None:
            raise ModelLoadError("the model folder has no silence latent (needed to pad the last code window)",
                                 path=bundle.dit, fix="download silence_latent.pt again from the model repository")
        self.model, self.silence = loaded.model, loaded.silence_latent
        self.dit_name = bundle.dit.name
        self.codebook_size = self.model.tokenizer.quantizer.codebook_size

    @torch.no_grad()
    def codes(self, path: Path) -> list[int]:
        """The song's 5 Hz FSQ indices, in order (0..codebook_size-1)."""
        audio = load_audio(path, max_duration_s=None)
        if is_silent(audio.waveform):
            raise AudioError("the audio is silent: there is nothing to describe", path=path,
                             fix="remove the file from the folder, or label it by hand")
        latents = encode_latents(self.vae, torch.from_numpy(audio.waveform), generator=None, sample=False)
        latents = latents.to(self.device)[None]  # [1, T, C]
        mask = torch.ones(latents.shape[:2], device=self.device)
        _, indices, _ = self.model.tokenize(latents, self.silence, mask)  # indices [1, T5, 1]
        return indices[0, :, 0].tolist()
