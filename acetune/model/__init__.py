"""Our ACE-Step 1.5 network: config, modules, loading and saving, tiny models."""

from acetune.model.acestep import AceStepModel, Condition
from acetune.model.checkpoint import COMPONENTS, LoadedModel, build_model, load_model, load_silence_latent, save_model
from acetune.model.config import ModelConfig
from acetune.model.masks import AttentionOptions
from acetune.model.tiny import NAMED, build_tiny_model, named_config, synthetic_silence_latent, write_tiny_checkpoint
from acetune.model.variant import VARIANT_NAMES, Variant, detect_variant

__all__ = [
    "AceStepModel", "AttentionOptions", "COMPONENTS", "Condition", "LoadedModel", "ModelConfig", "NAMED",
    "VARIANT_NAMES", "Variant", "build_model", "build_tiny_model", "detect_variant", "load_model",
    "load_silence_latent", "named_config", "save_model", "synthetic_silence_latent", "write_tiny_checkpoint",
]
