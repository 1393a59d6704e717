"""Adapters on the decoder: LoRA/DoRA (PEFT), LoKr/LoHa (LyCORIS) and full fine-tuning.

PEFT and LyCORIS are imported only in this package, and only when an adapter is attached,
saved or loaded (each costs seconds of import time).
"""

from acetune.adapters.attach import attach
from acetune.adapters.attached import AttachedAdapter
from acetune.adapters.groups import full_param_groups
from acetune.adapters.io import load_adapter, save_adapter
from acetune.adapters.targets import target_module_names

__all__ = ["AttachedAdapter", "attach", "full_param_groups", "load_adapter", "save_adapter", "target_module_names"]
