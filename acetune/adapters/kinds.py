"""The adapter kinds: one table of what acetune knows about each, read by training and inference alike.

Keyed by the `AdapterKind` enum of the config. Inference also meets `diff` (ComfyUI's full weight
differences, `.diff`/`.diff_b`): a kind of file, never of training, so it is `DIFF` here and has no
row. File names are the upstream tools' own: PEFT's `save_pretrained` (adapter_config.json +
adapter_model.safetensors), the LyCORIS files the ACE-Step app and Side-Step write
(`<algo>_weights.safetensors` with `<algo>_config` metadata, training spec §4.4), and the official
checkpoint's `decoder.*` names for a full fine-tune. Which exports take a kind: diffusers 0.42.1
loads LoRA, DoRA and LoKr (not LoHa: diffusers_export.py); ComfyUI patches every kind but a full
fine-tune (compatibility.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from acetune.config import AdapterKind

PEFT = "peft"
LYCORIS = "lycoris"
FULL = "full"

PEFT_CONFIG = "adapter_config.json"
PEFT_WEIGHTS = "adapter_model.safetensors"
DIFFUSERS_WEIGHTS = "pytorch_lora_weights.safetensors"  # diffusers' LORA_WEIGHT_NAME_SAFE: what it finds in a folder
DIFF = "diff"  # a ComfyUI weight-difference file: read and exported, never trained


@dataclass(frozen=True)
class KindFacts:
    """One adapter kind: its name for people, the backend that trains it, the file it is saved as."""

    display: str  # LoRA, DoRA, LoKr, LoHa, full fine-tune
    backend: str  # peft | lycoris | full: the library that attaches, saves and loads it
    weights_file: str  # the weights file save_adapter writes (PEFT also writes PEFT_CONFIG beside it)
    diffusers: bool  # diffusers' AceStepPipeline loads it as an adapter
    comfyui: bool  # ComfyUI patches it as an adapter (a full fine-tune is merged instead)
    live_strength: bool  # a live (training) adapter scales to any strength, 0 = the base (strength.py)
    upstream_config: str | None = None  # LyCORIS: the header entry with the upstream `<algo>_config` JSON

    @property
    def marker(self) -> str:
        """The file whose presence in a folder says this backend's format (PEFT: its config)."""
        return PEFT_CONFIG if self.backend == PEFT else self.weights_file


KINDS: dict[AdapterKind, KindFacts] = {
    AdapterKind.LORA: KindFacts("LoRA", PEFT, PEFT_WEIGHTS, diffusers=True, comfyui=True, live_strength=True),
    AdapterKind.DORA: KindFacts("DoRA", PEFT, PEFT_WEIGHTS, diffusers=True, comfyui=True, live_strength=False),
    AdapterKind.LOKR: KindFacts("LoKr", LYCORIS, "lokr_weights.safetensors", diffusers=True, comfyui=True,
                                live_strength=True, upstream_config="lokr_config"),
    AdapterKind.LOHA: KindFacts("LoHa", LYCORIS, "loha_weights.safetensors", diffusers=False, comfyui=True,
                                live_strength=True, upstream_config="loha_config"),
    AdapterKind.FULL: KindFacts("full fine-tune", FULL, "decoder.safetensors", diffusers=False, comfyui=False,
                                live_strength=False),
}

LYCORIS_FILES = tuple(f.weights_file for f in KINDS.values() if f.backend == LYCORIS)
FULL_WEIGHTS = KINDS[AdapterKind.FULL].weights_file
WEIGHTS_FILES = (*LYCORIS_FILES, FULL_WEIGHTS, DIFFUSERS_WEIGHTS)  # what a folder holds besides a PEFT pair
STANDARD_FILES = frozenset({PEFT_CONFIG, PEFT_WEIGHTS, *WEIGHTS_FILES})  # files named by their folder
UPSTREAM_CONFIGS = frozenset(f.upstream_config for f in KINDS.values() if f.upstream_config)  # header entries


def facts(kind: str) -> KindFacts | None:
    """The row of a kind given as the enum or its string (`"lokr"`); None for `diff`, which has none."""
    try:
        return KINDS[AdapterKind(kind)]
    except ValueError:
        return None


def kinds_of(backend: str) -> tuple[AdapterKind, ...]:
    """The kinds one backend trains, in enum order (e.g. peft -> lora, dora)."""
    return tuple(kind for kind, row in KINDS.items() if row.backend == backend)
