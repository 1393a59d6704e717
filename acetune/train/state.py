"""Resumable training state as safetensors (tensors) + JSON (everything else): no pickle.

`flatten` splits any nested structure of dicts/lists/tensors/scalars (an optimizer state dict,
RNG states, EMA shadows) into a tensor dict and a JSON tree with placeholders; `unflatten`
puts it back exactly, tensor dtypes and shapes included.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

TENSOR_MARK = "__tensor__"
TUPLE_MARK = "__tuple__"
INT_KEYS_MARK = "__int_keys__"


def flatten(value: Any, tensors: dict[str, torch.Tensor], prefix: str = "") -> Any:
    """JSON-able tree of `value`; its tensors are moved into `tensors` under dotted names."""
    if isinstance(value, torch.Tensor):
        tensors[prefix] = value.detach().cpu().contiguous()
        return {TENSOR_MARK: prefix}
    if isinstance(value, dict):
        int_keys = all(isinstance(k, int) for k in value) and bool(value)
        tree = {str(k): flatten(v, tensors, f"{prefix}.{k}" if prefix else str(k)) for k, v in value.items()}
        return {INT_KEYS_MARK: tree} if int_keys else tree
    if isinstance(value, tuple):
        return {TUPLE_MARK: [flatten(v, tensors, f"{prefix}.{i}") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [flatten(v, tensors, f"{prefix}.{i}") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return flatten(torch.from_numpy(value.copy()), tensors, prefix)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} at {prefix!r} in a training state")


def unflatten(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(tree, dict):
        if TENSOR_MARK in tree:
            return tensors[tree[TENSOR_MARK]]
        if TUPLE_MARK in tree:
            return tuple(unflatten(v, tensors) for v in tree[TUPLE_MARK])
        if INT_KEYS_MARK in tree:
            return {int(k): unflatten(v, tensors) for k, v in tree[INT_KEYS_MARK].items()}
        return {k: unflatten(v, tensors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unflatten(v, tensors) for v in tree]
    return tree


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA): dropout and library draws become repeatable."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng() -> dict[str, Any]:
    """Python, NumPy, torch CPU and CUDA generator states."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["name"], keys, n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
