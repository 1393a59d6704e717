"""A deterministic eval loss: fixed t grid, fixed noise, no CFG dropout, no crop randomness.

The same samples, timesteps and noise are used at every evaluation of a run (and after a
resume), so eval losses are comparable across steps and drive best-checkpoint selection.
"""

from __future__ import annotations

import torch

from acetune.data.cache import CacheReader
from acetune.train.batching import Item, collate, crop_length
from acetune.train.objective import Draws, velocity_loss


@torch.no_grad()
def eval_loss(decoder, null_embedding: torch.Tensor, reader: CacheReader, indices: list[int],
              silence_latent: torch.Tensor, *, crop_frames: int, timesteps: tuple[float, ...], seed: int,
              device: torch.device, dtype: torch.dtype) -> float:
    was_training = decoder.training
    decoder.eval()
    generator = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    try:
        for index in indices:
            length = reader.entries[index].latent_length
            frames = crop_length(crop_frames, length)
            batch = collate(reader, [Item(index, 0, frames)], silence_latent).to(device, dtype)
            for value in timesteps:
                noise = torch.randn(batch.target_latents.shape, generator=generator).to(device, dtype)
                draws = Draws(torch.ones(1, device=device), noise, torch.zeros(1), torch.zeros(1))
                t = torch.full((1,), value, device=device)
                out = velocity_loss(decoder, null_embedding, batch.target_latents, batch.frame_mask,
                                    batch.encoder_hidden_states, batch.encoder_mask, batch.context_latents, draws,
                                    t=t, cfg_ratio=0.0)
                total += out.loss.item()
                count += 1
    finally:
        decoder.train(was_training)
    return total / max(count, 1)
