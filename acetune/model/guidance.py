"""Guidance rules of the base/sft sampler: APG (the default) and ADG.

Both turn a conditional and an unconditional velocity into the one used for the update.
The dtype of every intermediate follows the reference sampler exactly (float32 with a
float64 projection for APG; float64 angles for ADG), because the golden runs are
bit-exact only when those roundings match.
"""

from __future__ import annotations

import torch

APG_MOMENTUM = -0.75
APG_NORM_THRESHOLD = 2.5
APG_ETA = 0.0
ADG_ANGLE_LIMIT = 3.14 / 6  # 3.14, not pi: the reference constant
ADG_COS_LIMIT = 1.0 - 1e-6
ADG_SIN_FLOOR = 1e-3
ADG_WEIGHT_OFFSET = 1e-3
ADG_DOT_EPS = 1e-8
NORMALIZE_EPS = 1e-12  # the floor torch's F.normalize puts under a norm


class MomentumBuffer:
    """APG's running average of guidance differences; one per sampling call."""

    def __init__(self):
        self.average: torch.Tensor | None = None

    def update(self, diff: torch.Tensor) -> torch.Tensor:
        """average <- diff + momentum * average (average starts at 0); returns the new average."""
        previous = torch.zeros_like(diff) if self.average is None else self.average
        self.average = diff + APG_MOMENTUM * previous
        return self.average


def apg(v_cond: torch.Tensor, v_uncond: torch.Tensor, scale: float, buffer: MomentumBuffer) -> torch.Tensor:
    """Adaptive projected guidance on [B, T, C] velocities: keep only the part of the
    (momentum-smoothed, norm-clipped) difference orthogonal to v_cond, per sample and channel.

    Reductions run over time with time as the contiguous axis (the DiT's output layout),
    so the float32 norm rounds the same way whatever layout the caller's tensors have.
    """
    cond = v_cond.transpose(1, 2).contiguous()  # [B, C, T]
    diff = cond - v_uncond.transpose(1, 2).contiguous()
    diff = buffer.update(diff)
    norm = torch.linalg.vector_norm(diff, dim=-1, keepdim=True)
    diff = diff * torch.minimum(torch.ones_like(diff), APG_NORM_THRESHOLD / norm)
    diff64, cond64 = diff.double(), cond.double()
    unit = cond64 / torch.linalg.vector_norm(cond64, dim=-1, keepdim=True).clamp_min(NORMALIZE_EPS)
    parallel64 = (diff64 * unit).sum(dim=-1, keepdim=True) * unit
    orthogonal = (diff64 - parallel64).to(cond.dtype)
    parallel = parallel64.to(cond.dtype)
    guided = cond + (scale - 1) * (orthogonal + APG_ETA * parallel)
    return guided.transpose(1, 2).contiguous()


def adg(x: torch.Tensor, v_cond: torch.Tensor, v_uncond: torch.Tensor, sigma: torch.Tensor,
        scale: float) -> torch.Tensor:
    """Angle-domain guidance: rotate the conditional data prediction away from the
    unconditional one by a clipped multiple of their angle (per sample and frame)."""
    weight = (scale - 1 if scale > 1 else 0.0) + ADG_WEIGHT_OFFSET
    x0_cond = x - sigma * v_cond
    x0_uncond = x - sigma * v_uncond
    delta = x0_cond - x0_uncond
    cosine = _cosine(x0_cond.double(), x0_uncond.double()).clamp(-ADG_COS_LIMIT, ADG_COS_LIMIT)
    theta = torch.arccos(cosine)[..., None]  # [B, T, 1] float64
    theta_new = (weight * theta).clamp(-ADG_ANGLE_LIMIT, ADG_ANGLE_LIMIT)
    dot = (delta * x0_uncond).sum(dim=-1, keepdim=True)
    norm_sq = (x0_uncond * x0_uncond).sum(dim=-1, keepdim=True)
    perp = delta - (dot / (norm_sq + ADG_DOT_EPS)) * x0_uncond
    sin_theta = torch.sin(theta)
    rotated = torch.where(sin_theta > ADG_SIN_FLOOR, perp * torch.sin(theta_new) / sin_theta, perp * weight)
    x0_new = torch.cos(theta_new) * x0_cond + rotated
    return ((x - x0_new) / sigma).to(v_cond.dtype)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity over the last dim (torch's definition, eps 1e-8 on the norm product)."""
    return torch.nn.functional.cosine_similarity(a, b, dim=-1, eps=1e-8)
