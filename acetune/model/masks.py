"""Attention masks in the official additive convention.

The official code builds a boolean "may attend" matrix (sliding window AND key padding) and
turns it into an additive mask with `finfo(dtype).min`, not -inf. A query row whose keys are
all masked therefore gets uniform weights over the whole row instead of NaN, and the
official outputs depend on that; we reproduce it.

Window conventions (spec §3.3): `eager` (eager/SDPA code) lets query i see key j iff
|i - j| <= sliding_window; `flash` (flash-attention-2 code path) uses |i - j| <= sliding_window - 1
and applies the window only when the key length exceeds sliding_window. Which one the released
weights were trained with is not published; `eager` is the default because the goldens use it.

`rope_dtype` (see `RopeDtype`) is carried here too: it is the other per-run choice that reaches
every attention stack without being part of config.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from acetune.config.schema import RopeDtype

WindowConvention = Literal["eager", "flash"]
WINDOW_CONVENTIONS: tuple[str, ...] = ("eager", "flash")


@dataclass(frozen=True)
class AttentionOptions:
    """Runtime attention behaviour that is not part of a checkpoint's config.json."""

    window_convention: WindowConvention = "eager"
    # Official DiT ignores both padding masks (spec quirk). True makes it honour them so a padded
    # batch computes, at valid positions, exactly what each sample computes alone.
    honor_padding: bool = False
    # Rotary frequencies rounded to the compute dtype (the official app's bf16 model) or kept in fp32.
    rope_dtype: RopeDtype = RopeDtype.MODEL

    def __post_init__(self) -> None:
        if self.window_convention not in WINDOW_CONVENTIONS:
            raise ValueError(f"window_convention must be one of {WINDOW_CONVENTIONS}, got {self.window_convention!r}")
        try:
            object.__setattr__(self, "rope_dtype", RopeDtype(self.rope_dtype))  # "fp32" -> RopeDtype.FP32
        except ValueError:
            raise ValueError(f"rope_dtype must be one of {[r.value for r in RopeDtype]}, "
                             f"got {self.rope_dtype!r}") from None


def window_allowed(
    q_len: int, k_len: int, window: int | None, convention: WindowConvention, device: torch.device
) -> torch.Tensor | None:
    """Boolean [q_len, k_len] sliding-window geometry, or None when it restricts nothing."""
    if window is None:
        return None
    if convention == "flash":
        if k_len <= window:
            return None
        window = window - 1
    if max(q_len, k_len) - 1 <= window:
        return None
    qi = torch.arange(q_len, device=device)[:, None]
    kj = torch.arange(k_len, device=device)[None, :]
    return (qi - kj).abs() <= window


def additive_mask(
    q_len: int,
    k_len: int,
    *,
    dtype: torch.dtype,
    device: torch.device,
    key_valid: torch.Tensor | None = None,  # [B, k_len], nonzero = attend
    window: int | None = None,
    convention: WindowConvention = "eager",
) -> torch.Tensor | None:
    """Additive mask [B or 1, 1, q_len, k_len] (0 = attend, finfo.min = blocked), or None if unmasked."""
    allowed = window_allowed(q_len, k_len, window, convention, device)
    if key_valid is not None:
        keys = key_valid.to(device=device).bool()
        if not bool(keys.all()):
            keys = keys[:, None, :]  # [B, 1, k_len]
            allowed = keys if allowed is None else (allowed[None] & keys)
    if allowed is None:
        return None
    if allowed.dim() == 2:
        allowed = allowed[None]
    blocked = torch.tensor(torch.finfo(dtype).min, dtype=dtype, device=device)
    zero = torch.tensor(0.0, dtype=dtype, device=device)
    return torch.where(allowed, zero, blocked)[:, None]  # [B|1, 1, q, k]
