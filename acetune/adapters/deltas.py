"""One adapted decoder tensor in neutral form (`ModuleDelta`), and the math that patches a weight with it.

Inference needs none of PEFT's or LyCORIS's module machinery, only each module's patched
weight, so every reader (formats.py) produces `ModuleDelta`s and `merged_weight` holds the math.
The LyCORIS math (kron with trailing kernel axes, Hadamard product, Tucker rebuild, scale =
alpha / rank of the `*_b` factor, 1 when both LoKr halves are full) is written here rather than
called from `lycoris.functional`, whose names, rank rule and backend dispatch differ between the
LyCORIS releases acetune accepts; the tests check it against a live LyCORIS network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from acetune.adapters.kinds import DIFF, DeltaKind, delta_kind
from acetune.config import AdapterKind


@dataclass(frozen=True, eq=False)
class ModuleDelta:
    """One adapted decoder tensor: `<module>.<param>` (param is `weight` except for bias replacements/diffs).

    `tensors` (CPU, as stored): lora/dora `lora_down` [r, in...], `lora_up` [out, r...], optional
    `dora_scale` (PEFT magnitude [out], or ComfyUI/LyCORIS [out, 1] / [1, in]); lokr/loha the
    LyCORIS names (`lokr_w1`, `hada_w1_a`, ..., optional `dora_scale`); full `weight` (the new
    value); diff `weight` (a full weight difference, ComfyUI's `.diff` / `.diff_b`).
    `scale` is what multiplies the factors at strength 1 (alpha/r, alpha/sqrt(r) for rsLoRA);
    `alpha` is the alpha it came from (None when the file states none).
    """

    module: str
    kind: DeltaKind  # given as text ("lora"), it becomes the enum member
    tensors: dict[str, torch.Tensor]
    scale: float = 1.0
    param: str = "weight"
    alpha: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", delta_kind(self.kind))

    @property
    def target(self) -> str:
        """The decoder tensor this patches, e.g. `layers.0.self_attn.q_proj.weight`."""
        return f"{self.module}.{self.param}" if self.module else self.param

    @property
    def rank(self) -> int | None:
        t = self.tensors
        for key in ("lora_down", "lokr_w2_b", "lokr_w1_b", "hada_w1_b"):
            if key in t:
                return int(t[key].shape[0])
        return None

    @property
    def patched_numel(self) -> int:
        """Elements of the tensor this patches (what a full weight difference of it stores)."""
        if self.kind in (AdapterKind.FULL, DIFF):
            return self.tensors["weight"].numel()
        rows, flat_in = _implied_size(self.tensors)
        return rows * flat_in

    def mismatch(self, shape: torch.Size) -> str | None:
        """Why this delta cannot patch a tensor of `shape` (None when it fits)."""
        if self.kind in (AdapterKind.FULL, DIFF):
            found = tuple(self.tensors["weight"].shape)
            return None if found == tuple(shape) else f"the adapter has {list(found)}, this decoder {list(shape)}"
        if len(shape) < 2:
            return f"the adapter patches a matrix, this decoder has a vector {list(shape)}"
        out, flat_in = _implied_size(self.tensors)
        if (out, flat_in) != (shape[0], math.prod(shape[1:])):
            return f"the adapter makes [{out}, {flat_in}], this decoder has {list(shape)}"
        scale = self.tensors.get("dora_scale")
        if scale is not None and _dora_axis(scale, shape) is None:
            return f"its dora_scale {list(scale.shape)} fits neither rows nor columns of {list(shape)}"
        return None

    def merged_weight(self, base: torch.Tensor, strength: float) -> torch.Tensor:
        """`base` patched at `strength`, computed in float32 on base's device, returned in base's dtype.

        lora/lokr/loha and diff: W + strength*ΔW. Weight-decomposed (DoRA, or LyCORIS with
        dora_scale) and full: lerp(W, W_adapted, strength), ComfyUI's strength rule, so 0 is the
        base and 1 the trained weight (a diff of a DoRA is the same lerp, written as a sum).
        """
        w = base.detach().float()
        if self.kind == AdapterKind.FULL:
            return torch.lerp(w, self.tensors["weight"].to(w.device, torch.float32), strength).to(base.dtype)
        if self.kind == DIFF:
            return w.add(self.tensors["weight"].to(w.device, torch.float32), alpha=strength).to(base.dtype)
        delta = _delta(self.kind, {k: v.to(w.device, torch.float32) for k, v in self.tensors.items()},
                       self.scale, w.shape)
        magnitude = self.tensors.get("dora_scale")
        if magnitude is None:
            return w.add(delta, alpha=strength).to(base.dtype)
        adapted = _decompose(w + delta, magnitude.to(w.device, torch.float32))
        return torch.lerp(w, adapted, strength).to(base.dtype)


def _implied_size(t: dict[str, torch.Tensor]) -> tuple[int, int]:
    """(rows, flattened columns) of the ΔW the factors build."""
    if "lora_up" in t:
        return t["lora_up"].shape[0], t["lora_down"][0].numel()
    if "hada_t1" in t:
        return t["hada_w1_a"].shape[1], t["hada_w1_b"].shape[1] * math.prod(t["hada_t1"].shape[2:])
    if "hada_w1_a" in t:
        return t["hada_w1_a"].shape[0], t["hada_w1_b"][0].numel()
    w1 = t["lokr_w1"].shape[:2] if "lokr_w1" in t else (t["lokr_w1_a"].shape[0], t["lokr_w1_b"].shape[1])
    if "lokr_w2" in t:
        w2 = (t["lokr_w2"].shape[0], t["lokr_w2"][0].numel())
    elif "lokr_t2" in t:
        w2 = (t["lokr_w2_a"].shape[1], t["lokr_w2_b"].shape[1] * math.prod(t["lokr_t2"].shape[2:]))
    else:
        w2 = (t["lokr_w2_a"].shape[0], t["lokr_w2_b"][0].numel())
    return w1[0] * w2[0], w1[1] * w2[1]


def _delta(kind: DeltaKind, t: dict[str, torch.Tensor], scale: float, shape: torch.Size) -> torch.Tensor:
    """ΔW (float32, scaled) in the base weight's shape."""
    if kind in (AdapterKind.LORA, AdapterKind.DORA):
        delta = t["lora_up"].flatten(1) @ t["lora_down"].flatten(1)
    elif kind == AdapterKind.LOHA:
        delta = _hada_half(t, "1") * _hada_half(t, "2")
    else:
        w1 = t["lokr_w1"] if "lokr_w1" in t else t["lokr_w1_a"] @ t["lokr_w1_b"]
        if "lokr_w2" in t:
            w2 = t["lokr_w2"]
        elif "lokr_t2" in t:  # Tucker: core [r, r, *k], w2_a [r, rows], w2_b [r, cols]
            w2 = torch.einsum("ij...,ip,jq->pq...", t["lokr_t2"], t["lokr_w2_a"], t["lokr_w2_b"])
        else:
            w2 = t["lokr_w2_a"] @ t["lokr_w2_b"].flatten(1)
        w1 = w1.reshape(*w1.shape, *[1] * (w2.dim() - w1.dim()))  # kernel axes go with the second factor
        delta = torch.kron(w1.contiguous(), w2.contiguous())  # kron views its inputs
    return (delta * scale).reshape(shape)


def _hada_half(t: dict[str, torch.Tensor], i: str) -> torch.Tensor:
    up, down = t[f"hada_w{i}_a"], t[f"hada_w{i}_b"]
    if f"hada_t{i}" in t:  # Tucker: core [r, r, *k], up [r, out], down [r, in]
        return torch.einsum("ij...,jq,ip->pq...", t[f"hada_t{i}"], down, up).flatten(1)
    return up @ down.flatten(1)


def _dora_axis(scale: torch.Tensor, shape: torch.Size) -> str | None:
    """`out` for a per-row magnitude ([out] or [out, 1, ...]), `in` for a per-column one ([1, in, ...])."""
    if scale.numel() == shape[0] and (scale.dim() == 1 or scale.shape[0] == shape[0]):
        return "out"
    if scale.dim() >= 2 and scale.shape[0] == 1 and scale.numel() == shape[1]:
        return "in"
    return None


def _decompose(adapted: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """m * V / ||V||, the norm per output row (PEFT DoRA) or per input column (LyCORIS wd_on_out=False)."""
    tiny = torch.finfo(torch.float32).tiny
    if _dora_axis(magnitude, adapted.shape) == "out":
        norm = adapted.flatten(1).norm(dim=1).clamp_min(tiny)
        return adapted * (magnitude.flatten() / norm).reshape(-1, *[1] * (adapted.dim() - 1))
    norm = adapted.transpose(0, 1).flatten(1).norm(dim=1).clamp_min(tiny)
    return adapted * (magnitude.flatten() / norm).reshape(1, -1, *[1] * (adapted.dim() - 2))
