"""The audio VAE (diffusers `AutoencoderOobleck`) with tiled, seeded encoding for long files.

Tiling is overlap-discard: each window is encoded with `overlap_s` of context on both sides
and only its core frames are kept, so memory stays bounded for a 4-minute song. The posterior
is sampled once for the whole file (mean + std * eps with eps from the caller's generator),
so the random draw does not depend on how the file was tiled, and tiled and whole-file
encodings differ only by the encoder's receptive field at window edges.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from acetune.errors import ModelLoadError

DEFAULT_CHUNK_S = 30.0
DEFAULT_OVERLAP_S = 2.0


def load_vae(folder: Path, *, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"):
    """`AutoencoderOobleck.from_pretrained(folder)`, with a clear error when the folder is not a VAE."""
    from diffusers import AutoencoderOobleck

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ModelLoadError("the VAE folder has no config.json", path=folder,
                             fix="point --checkpoint-dir at the ACE-Step checkpoints folder that holds vae/")
    try:
        vae = AutoencoderOobleck.from_pretrained(folder, torch_dtype=dtype, low_cpu_mem_usage=False)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise ModelLoadError(f"cannot load the VAE ({type(err).__name__}: {str(err).splitlines()[0]})", path=folder,
                             fix="download the vae/ folder again") from err
    return vae.to(device).eval().requires_grad_(False)


def hop_length(vae) -> int:
    """Audio samples per latent frame (1920 for ACE-Step: 2*4*4*6*10)."""
    return math.prod(vae.config.downsampling_ratios)


@torch.no_grad()
def encode_posterior(vae, waveform: torch.Tensor, *, chunk_s: float = DEFAULT_CHUNK_S,
                     overlap_s: float = DEFAULT_OVERLAP_S) -> tuple[torch.Tensor, torch.Tensor]:
    """[2, S] audio -> posterior (mean, std), each [C, S // hop], encoded in overlapping windows."""
    hop, rate = hop_length(vae), vae.config.sampling_rate
    device, dtype = next(vae.parameters()).device, next(vae.parameters()).dtype
    samples = waveform.shape[-1]
    overlap = round(overlap_s * rate / hop) * hop
    core = (int(chunk_s * rate) // hop) * hop - 2 * overlap
    if core <= 0:
        raise ValueError(f"chunk_s ({chunk_s}) must exceed twice overlap_s ({overlap_s})")
    audio = waveform.to(device=device, dtype=dtype)[None]  # [1, 2, S]
    if samples <= core + 2 * overlap:
        dist = vae.encode(audio).latent_dist
        return dist.mean[0].float(), dist.std[0].float()
    means, stds = [], []
    for start in range(0, samples, core):
        window_start, window_end = max(0, start - overlap), min(samples, start + core + overlap)
        dist = vae.encode(audio[..., window_start:window_end]).latent_dist
        first = (start - window_start) // hop
        count = min(start + core, samples) // hop - start // hop
        means.append(dist.mean[0, :, first:first + count].float())
        stds.append(dist.std[0, :, first:first + count].float())
    return torch.cat(means, dim=-1), torch.cat(stds, dim=-1)


def encode_latents(vae, waveform: torch.Tensor, *, generator: torch.Generator | None, sample: bool = True,
                   chunk_s: float = DEFAULT_CHUNK_S, overlap_s: float = DEFAULT_OVERLAP_S) -> torch.Tensor:
    """[2, S] audio -> time-major latents [T, C]: a posterior sample (as ACE-Step trains) or its mean."""
    mean, std = encode_posterior(vae, waveform, chunk_s=chunk_s, overlap_s=overlap_s)
    if not sample:
        return mean.T.contiguous()
    eps = torch.randn(mean.shape, generator=generator, dtype=torch.float32)
    return (mean + std * eps.to(mean.device)).T.contiguous()
