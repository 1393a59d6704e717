"""An adapter's rank, alpha and effective scale per module group, as `acetune adapter info` shows them.

Groups follow the decoder's blocks: self-attention, cross-attention and MLP projections of the
layers, then norms and the embeddings/projections outside the layers; trained biases (PEFT
bias="all") and full replacements are their own row. A value that differs inside a group is
shown as its range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from acetune.adapters.deltas import ModuleDelta
from acetune.adapters.kinds import DIFF
from acetune.config import AdapterKind

_LAYER = re.compile(r"layers\.(\d+)\.(self_attn|cross_attn|mlp)\.(\w+)$")
_BLOCKS = {"self_attn": "self-attention", "cross_attn": "cross-attention", "mlp": "MLP"}
_ORDER = ("self-attention", "cross-attention", "MLP", "norms", "embeddings and projections", "biases", "full weights")


@dataclass(frozen=True)
class GroupRow:
    group: str  # one of _ORDER
    parts: str  # e.g. "q/k/v/o" or "gate/up/down"
    layers: int  # distinct decoder layers in the group (0 outside the layers)
    modules: int
    kinds: str
    rank: str
    alpha: str
    scale: str  # what multiplies the factors at strength 1: alpha/r (alpha/sqrt(r) for rsLoRA)


def group_rows(deltas: dict[str, ModuleDelta]) -> list[GroupRow]:
    """One row per group that the adapter touches, in decoder order."""
    members: dict[str, list[tuple[str, ModuleDelta]]] = {}
    for delta in deltas.values():
        group, part = _group_of(delta)
        members.setdefault(group, []).append((part, delta))
    rows = []
    for group in sorted(members, key=_ORDER.index):
        items = members[group]
        parts = list(dict.fromkeys(part for part, _ in sorted(items, key=lambda item: _part_order(item[0]))))
        layers = {m.group(1) for _, d in items if (m := _LAYER.match(d.module))}
        found = [d for _, d in items]
        kinds = ", ".join(sorted({d.kind for d in found}))
        rows.append(GroupRow(group, "/".join(parts), len(layers), len(found), kinds,
                             _span([d.rank for d in found], "full"), _span([d.alpha for d in found], "—"),
                             _span([None if d.kind in (AdapterKind.FULL, DIFF) else d.scale for d in found], "—")))
    return rows


def _group_of(delta: ModuleDelta) -> tuple[str, str]:
    if delta.param != "weight":  # a bias, or a full fine-tune's tables
        return ("biases" if delta.param == "bias" else "full weights"), delta.param
    match = _LAYER.match(delta.module)
    if match and not match.group(3).endswith("_norm"):
        return _BLOCKS[match.group(2)], match.group(3).removesuffix("_proj")
    last = delta.module.rsplit(".", 1)[-1]
    if last.endswith("norm"):
        return "norms", last
    return "embeddings and projections", delta.module.split(".")[0]


def _part_order(part: str) -> tuple[int, str]:
    known = ("q", "k", "v", "o", "gate", "up", "down")
    return (known.index(part), "") if part in known else (len(known), part)


def _span(values: list, missing: str) -> str:
    """`64`, `16–64`, or `missing` when no module has a value."""
    present = [v for v in values if v is not None]
    if not present:
        return missing
    low, high = min(present), max(present)
    text = f"{low:g}" if low == high else f"{low:g}–{high:g}"
    return text if len(present) == len(values) else f"{text} (some {missing})"
