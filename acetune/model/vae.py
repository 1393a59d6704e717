"""The audio VAE (diffusers `AutoencoderOobleck`) with tiled, seeded encoding and tiled decoding.

Tiling is overlap-discard: each window is encoded with `overlap_s` of context on both sides
and only its core frames are kept, so memory stays bounded for a 4-minute song. The posterior
is sampled once for the whole file (mean + std * eps with eps from the caller's generator),
so the random draw does not depend on how the file was tiled, and tiled and whole-file
encodings differ only by the encoder's receptive field at window edges. Decoding tiles the
same way over latent frames; the decoder's receptive field (about 10 frames) is well inside
the default 64-frame overlap, so tiled and whole decodes agree to float rounding.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from acetune.errors import ConfigError, ModelLoadError

DEFAULT_CHUNK_S = 30.0
DEFAULT_OVERLAP_S = 2.0
DEFAULT_DECODE_CHUNK_FRAMES = 750  # 30 s of latents per window
DEFAULT_DECODE_OVERLAP_FRAMES = 64


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


@torch.no_grad()
def decode_latents(vae, latents: torch.Tensor, *, chunk_frames: int = DEFAULT_DECODE_CHUNK_FRAMES,
                   overlap_frames: int = DEFAULT_DECODE_OVERLAP_FRAMES) -> torch.Tensor:
    """Time-major latents [B, T, C] (the sampler's output) -> waveform [B, channels, T*hop], float32 CPU.

    Up to `chunk_frames` frames decode in one call. Longer inputs decode in windows of at most
    `chunk_frames`, each with `overlap_frames` of context on both sides of its core, and only
    the core's samples are kept (overlap-discard), so device memory stays bounded.
    """
    if latents.ndim != 3:
        raise ConfigError(f"decode_latents expects time-major latents [B, T, C], got shape {tuple(latents.shape)}")
    core = chunk_frames - 2 * overlap_frames
    if overlap_frames < 0 or core <= 0:
        raise ConfigError(f"decode chunk_frames ({chunk_frames}) must exceed twice overlap_frames "
                          f"({overlap_frames}), and the overlap must be >= 0")
    hop = hop_length(vae)
    parameter = next(vae.parameters())
    z = latents.transpose(1, 2).to(device=parameter.device, dtype=parameter.dtype)  # [B, C, T]
    frames = z.shape[-1]
    if frames <= chunk_frames:
        return vae.decode(z).sample.float().cpu()
    pieces = []
    for start in range(0, frames, core):
        end = min(start + core, frames)
        window_start, window_end = max(0, start - overlap_frames), min(frames, end + overlap_frames)
        audio = vae.decode(z[..., window_start:window_end]).sample
        first = (start - window_start) * hop
        pieces.append(audio[..., first:first + (end - start) * hop].float().cpu())
    return torch.cat(pieces, dim=-1)


def peak_normalize(waveform: torch.Tensor) -> torch.Tensor:
    """Anti-clipping as the ACE-Step app does it: an item whose peak |x| exceeds 1 is divided
    by its peak; quieter items are left unchanged. [B, channels, S] (per item) or [channels, S]."""
    dims = tuple(range(1, waveform.ndim)) if waveform.ndim == 3 else tuple(range(waveform.ndim))
    peak = waveform.abs().amax(dim=dims, keepdim=True)
    return torch.where(peak > 1, waveform / peak, waveform)
