"""Which ACE-Step 1.5 variant a checkpoint is, read from its config (never from a folder name).

Turbo, base and sft share one architecture; they differ in the sampler (turbo: fixed
8-step tables without guidance; base/sft: shifted schedule with CFG). XL variants have a
wider decoder. Fine-tunes whose config lacks the telling keys are `custom` unless the user
names the variant explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass

from acetune.errors import ConfigError
from acetune.model.config import ModelConfig

KINDS = ("turbo", "base", "sft")
VARIANT_NAMES = KINDS + tuple(f"xl-{k}" for k in KINDS) + ("custom",)


@dataclass(frozen=True)
class Variant:
    """A detected (or user-named) variant and the evidence it rests on."""

    name: str  # one of VARIANT_NAMES
    evidence: str

    @property
    def kind(self) -> str | None:
        """turbo / base / sft, or None for an unidentified custom fine-tune."""
        return kind_of(self.name)

    @property
    def is_xl(self) -> bool:
        return self.name.startswith("xl-")

    @property
    def uses_cfg(self) -> bool | None:
        """Whether the variant's own sampler uses classifier-free guidance (base/sft) or not (turbo)."""
        kind = self.kind
        return None if kind is None else kind != "turbo"


def kind_of(variant_name: str) -> str | None:
    """"xl-base" -> "base", "turbo" -> "turbo"; None for "custom" (or anything unknown)."""
    kind = variant_name.removeprefix("xl-")
    return kind if kind in KINDS else None


def detect_variant(config: ModelConfig, override: str | None = None) -> Variant:
    """Name the variant from `is_turbo`, `model_version`, `auto_map` and the XL fields."""
    if override is not None:
        if override not in VARIANT_NAMES:
            raise ConfigError(f"unknown variant {override!r}; choose one of {', '.join(VARIANT_NAMES)}")
        if override != "custom" and override.startswith("xl-") != config.is_xl:
            size = "an XL" if config.is_xl else "a 2B"
            raise ConfigError(f"variant {override!r} does not fit {size} config (encoder_hidden_size "
                              f"is {'set' if config.is_xl else 'absent'})")
        return Variant(override, "named explicitly")
    kind, evidence = _detect_kind(config)
    if kind is None:
        return Variant("custom", evidence)
    prefix = "xl-" if config.is_xl else ""
    return Variant(prefix + kind, evidence + (", encoder_hidden_size set" if config.is_xl else ""))


def _detect_kind(config: ModelConfig) -> tuple[str | None, str]:
    if config.is_turbo is True:
        return "turbo", "is_turbo: true"
    if config.is_turbo is False:
        if config.model_version == "sft":
            return "sft", "is_turbo: false, model_version: sft"
        return "base", "is_turbo: false (base and sft share the CFG sampler)"
    auto_model = str((config.extra.get("auto_map") or {}).get("AutoModel", ""))
    for kind in KINDS:
        if f"_{kind}." in auto_model:
            return kind, f"auto_map.AutoModel: {auto_model}"
    return None, "config has neither is_turbo nor a telling auto_map; pass the variant explicitly"
