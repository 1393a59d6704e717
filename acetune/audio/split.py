"""Cut long recordings into consecutive training-length pieces."""

from __future__ import annotations

import numpy as np


def split_waveform(
    x: np.ndarray, sample_rate: int, segment_s: float, min_segment_s: float = 10.0
) -> list[np.ndarray]:
    """Non-overlapping pieces of `segment_s` from the start; a shorter last piece is kept only if >= `min_segment_s`.

    Pieces are views into `x` (copy them before changing them in place). A clip shorter than
    `min_segment_s` yields an empty list: it is too short to be worth a training sample.
    """
    if not isinstance(x, np.ndarray) or x.ndim != 2:
        raise ValueError(f"expected a waveform shaped [channels, samples], got {getattr(x, 'shape', type(x).__name__)}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if segment_s <= 0:
        raise ValueError(f"segment_s must be positive, got {segment_s}")
    if min_segment_s <= 0 or min_segment_s > segment_s:
        raise ValueError(f"min_segment_s must be in (0, segment_s={segment_s}], got {min_segment_s}")
    step = int(round(segment_s * sample_rate))
    min_len = int(round(min_segment_s * sample_rate))
    pieces = [x[:, start : start + step] for start in range(0, x.shape[1], step)]
    if pieces and pieces[-1].shape[1] < min_len:
        pieces.pop()
    return pieces
