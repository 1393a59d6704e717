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
from acetune.model.banded import BandedMask, banded_mask

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


def window_reach(q_len: int, k_len: int, window: int | None, convention: WindowConvention) -> int | None:
    """How far (in keys, each side) a query sees under `window`, or None when the window restricts nothing."""
    if window is None:
        return None
    if convention == "flash":
        if k_len <= window:
            return None
        window = window - 1
    if max(q_len, k_len) - 1 <= window:
        return None
    return window


def window_allowed(
    q_len: int, k_len: int, window: int | None, convention: WindowConvention, device: torch.device
) -> torch.Tensor | None:
    """Boolean [q_len, k_len] sliding-window geometry, or None when it restricts nothing."""
    reach = window_reach(q_len, k_len, window, convention)
    if reach is None:
        return None
    qi = torch.arange(q_len, device=device)[:, None]
    kj = torch.arange(k_len, device=device)[None, :]
    return (qi - kj).abs() <= reach


# A band computes 3 * reach keys per query instead of the whole row: it pays once that is under half
# the dense work (length > 6 * reach). Measured fwd+bwd, window 128, 8/4 heads x 64, one thread:
# 375 tokens band 38 ms vs dense 30; 750: 71 vs 62; 1500: 112 vs 389; 3000: 193 vs 1244
# (python bench/vs_reference.py reports the effect on whole steps).
BAND_MIN_RATIO = 6


def self_attention_mask(
    length: int,
    *,
    dtype: torch.dtype,
    device: torch.device,
    key_valid: torch.Tensor | None = None,
    window: int | None = None,
    convention: WindowConvention = "eager",
    banded: bool = False,
) -> torch.Tensor | BandedMask | None:
    """The self-attention mask of one layer kind: a band where allowed and paying, else `additive_mask`.

    `banded` is for stacks whose padded query rows are never read (the DiT with honor_padding, or
    without padding): there a band differs from the dense mask only at those rows (see banded.py).
    """
    reach = window_reach(length, length, window, convention)
    if banded and reach is not None and reach >= 1 and length > BAND_MIN_RATIO * reach:
        valid = key_valid if key_valid is not None and not bool(key_valid.bool().all()) else None
        return banded_mask(length, reach, dtype=dtype, device=device, key_valid=valid)
    return additive_mask(length, length, dtype=dtype, device=device, key_valid=key_valid, window=window,
                         convention=convention)


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
