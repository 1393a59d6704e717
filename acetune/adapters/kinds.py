"""The adapter kinds: one table of what acetune knows about each, read by training and inference alike.

Keyed by the `AdapterKind` enum of the config; each kind's backend family is the config's
`ADAPTER_BACKENDS` (config cannot import adapters, so the fact lives there and this table reads it).
Inference also meets `diff` (ComfyUI's full weight differences, `.diff`/`.diff_b`): a kind of file,
never of training, so it is `FileKind.DIFF` here and has no row; `DeltaKind` is what a file or one
module's delta can be. File names are the upstream tools' own: PEFT's `save_pretrained` (adapter_config.json +
adapter_model.safetensors), the LyCORIS files the ACE-Step app and Side-Step write
(`<algo>_weights.safetensors` with `<algo>_config` metadata, training spec §4.4), and the official
checkpoint's `decoder.*` names for a full fine-tune. Which exports take a kind: diffusers 0.42.1
loads LoRA, DoRA and LoKr (not LoHa: diffusers_export.py); ComfyUI patches every kind but a full
fine-tune (compatibility.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from acetune.config import ADAPTER_BACKENDS, AdapterBackend, AdapterKind

PEFT = AdapterBackend.PEFT
LYCORIS = AdapterBackend.LYCORIS
FULL = AdapterBackend.FULL

PEFT_CONFIG = "adapter_config.json"
PEFT_WEIGHTS = "adapter_model.safetensors"
DIFFUSERS_WEIGHTS = "pytorch_lora_weights.safetensors"  # diffusers' LORA_WEIGHT_NAME_SAFE: what it finds in a folder


class FileKind(StrEnum):
    """Kinds an adapter file can hold that are not trained (not an `AdapterKind`)."""

    DIFF = "diff"  # a ComfyUI weight-difference file: read and exported, never trained


DIFF = FileKind.DIFF
DeltaKind = AdapterKind | FileKind  # the kind of an adapter file, or of one module's delta in it


def delta_kind(value: str) -> DeltaKind:
    """The enum member of a kind given as text (`"lokr"` -> AdapterKind.LOKR, `"diff"` -> DIFF)."""
    return FileKind(value) if value == DIFF else AdapterKind(value)


@dataclass(frozen=True)
class KindFacts:
    """One adapter kind: its name for people, the file it is saved as, where it loads (its backend: the config's)."""

    kind: AdapterKind
    display: str  # LoRA, DoRA, LoKr, LoHa, full fine-tune
    weights_file: str  # the weights file save_adapter writes (PEFT also writes PEFT_CONFIG beside it)
    diffusers: bool  # diffusers' AceStepPipeline loads it as an adapter
    comfyui: bool  # ComfyUI patches it as an adapter (a full fine-tune is merged instead)
    live_strength: bool  # a live (training) adapter scales to any strength, 0 = the base (strength.py)
    upstream_config: str | None = None  # LyCORIS: the header entry with the upstream `<algo>_config` JSON

    @property
    def backend(self) -> AdapterBackend:
        """peft | lycoris | full: the library that attaches, saves and loads it."""
        return ADAPTER_BACKENDS[self.kind]

    @property
    def marker(self) -> str:
        """The file whose presence in a folder says this backend's format (PEFT: its config)."""
        return PEFT_CONFIG if self.backend == PEFT else self.weights_file


KINDS: dict[AdapterKind, KindFacts] = {row.kind: row for row in (
    KindFacts(AdapterKind.LORA, "LoRA", PEFT_WEIGHTS, diffusers=True, comfyui=True, live_strength=True),
    KindFacts(AdapterKind.DORA, "DoRA", PEFT_WEIGHTS, diffusers=True, comfyui=True, live_strength=False),
    KindFacts(AdapterKind.LOKR, "LoKr", "lokr_weights.safetensors", diffusers=True, comfyui=True,
              live_strength=True, upstream_config="lokr_config"),
    KindFacts(AdapterKind.LOHA, "LoHa", "loha_weights.safetensors", diffusers=False, comfyui=True,
              live_strength=True, upstream_config="loha_config"),
    KindFacts(AdapterKind.FULL, "full fine-tune", "decoder.safetensors", diffusers=False, comfyui=False,
              live_strength=False),
)}

LYCORIS_FILES = tuple(f.weights_file for f in KINDS.values() if f.backend == LYCORIS)
FULL_WEIGHTS = KINDS[AdapterKind.FULL].weights_file
WEIGHTS_FILES = (*LYCORIS_FILES, FULL_WEIGHTS, DIFFUSERS_WEIGHTS)  # what a folder holds besides a PEFT pair
STANDARD_FILES = frozenset({PEFT_CONFIG, PEFT_WEIGHTS, *WEIGHTS_FILES})  # files named by their folder
UPSTREAM_CONFIGS = frozenset(f.upstream_config for f in KINDS.values() if f.upstream_config)  # header entries


def facts(kind: DeltaKind | str) -> KindFacts | None:
    """The row of a kind given as the enum or its string (`"lokr"`); None for `diff`, which has none."""
    try:
        return KINDS[AdapterKind(kind)]
    except ValueError:
        return None


def kinds_of(backend: AdapterBackend | str) -> tuple[AdapterKind, ...]:
    """The kinds one backend trains, in enum order (e.g. peft -> lora, dora)."""
    return tuple(kind for kind, row in KINDS.items() if row.backend == backend)
