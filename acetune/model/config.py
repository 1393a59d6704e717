"""`ModelConfig`: the typed form of an ACE-Step 1.5 checkpoint's `config.json`.

Every architectural field of the official `AceStepConfig` is a typed attribute with the
official default (the 2B turbo values). Keys we do not model (`architectures`, `auto_map`,
`dtype`, future additions) are kept verbatim in `extra` and written back on save, so a
config survives a round trip through acetune unchanged.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acetune.errors import ConfigError

SLIDING = "sliding_attention"
FULL = "full_attention"
MODEL_TYPE = "acestep"

_INT, _FLOAT, _BOOL, _STR = int, float, bool, str


def default_layer_types(num_layers: int) -> list[str]:
    """Sliding attention at even layer indices, full attention at odd ones (official default)."""
    return [SLIDING if i % 2 == 0 else FULL for i in range(num_layers)]


@dataclass
class ModelConfig:
    """Architecture and training facts of one ACE-Step 1.5 checkpoint."""

    model_type: str = MODEL_TYPE
    model_version: str = "turbo"
    is_turbo: bool | None = None  # not an AceStepConfig argument; the app reads it to pick the sampler
    hidden_size: int = 2048
    intermediate_size: int = 6144
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    num_key_value_heads: int = 8
    head_dim: int = 128
    hidden_act: str = "silu"
    rms_norm_eps: float = 1e-6
    rope_theta: float = 1_000_000
    rope_scaling: dict | None = None
    max_position_embeddings: int = 32768
    attention_bias: bool = False
    attention_dropout: float = 0.0
    use_sliding_window: bool = True
    sliding_window: int | None = 128
    layer_types: list[str] | None = None
    initializer_range: float = 0.02
    use_cache: bool = True
    tie_word_embeddings: bool = True
    vocab_size: int = 64003
    fsq_dim: int = 2048
    fsq_input_levels: list[int] = field(default_factory=lambda: [8, 8, 8, 5, 5, 5])
    fsq_input_num_quantizers: int = 1
    in_channels: int = 192
    audio_acoustic_hidden_dim: int = 64
    patch_size: int = 2
    pool_window_size: int = 5
    text_hidden_dim: int = 1024
    timbre_hidden_dim: int = 64
    timbre_fix_frame: int = 750
    num_lyric_encoder_hidden_layers: int = 8
    num_timbre_encoder_hidden_layers: int = 4
    num_attention_pooler_hidden_layers: int = 2
    num_audio_decoder_hidden_layers: int = 24
    data_proportion: float = 0.5
    timestep_mu: float = -0.4
    timestep_sigma: float = 1.0
    # XL checkpoints only: the condition side (encoder, tokenizer, detokenizer, null embedding)
    # has its own width; absent on 2B checkpoints, where it equals the decoder's.
    encoder_hidden_size: int | None = None
    encoder_intermediate_size: int | None = None
    encoder_num_attention_heads: int | None = None
    encoder_num_key_value_heads: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.layer_types is None:
            self.layer_types = default_layer_types(self.num_hidden_layers)
        if not self.use_sliding_window:
            self.sliding_window = None

    # --- derived facts -------------------------------------------------------------
    @property
    def is_xl(self) -> bool:
        """XL configs carry a separate condition-side width."""
        return self.encoder_hidden_size is not None

    def condition_side(self) -> "ModelConfig":
        """The config the encoder, tokenizer, detokenizer and null embedding are built from.

        For XL this is a copy with the `encoder_*` sizes; for 2B it is the config itself.
        """
        if not self.is_xl:
            return self
        return dataclasses.replace(
            self,
            hidden_size=self.encoder_hidden_size,
            intermediate_size=self.encoder_intermediate_size or self.intermediate_size,
            num_attention_heads=self.encoder_num_attention_heads or self.num_attention_heads,
            num_key_value_heads=self.encoder_num_key_value_heads or self.num_key_value_heads,
            fsq_dim=self.encoder_hidden_size,
            encoder_hidden_size=None,
            encoder_intermediate_size=None,
            encoder_num_attention_heads=None,
            encoder_num_key_value_heads=None,
            extra=dict(self.extra),
        )

    @property
    def condition_hidden_size(self) -> int:
        return self.encoder_hidden_size or self.hidden_size

    # --- (de)serialisation ------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: Path | str | None = None) -> "ModelConfig":
        """Build from a `config.json` mapping; unknown keys go to `extra`, bad values raise."""
        if not isinstance(data, dict):
            raise ConfigError("config.json must hold a JSON object", path=source)
        model_type = data.get("model_type")
        if model_type != MODEL_TYPE:
            raise ConfigError(
                f"model_type is {model_type!r}, expected {MODEL_TYPE!r}: this is not an ACE-Step 1.5 DiT config",
                path=source,
                fix="point at an ACE-Step 1.5 model folder such as checkpoints/acestep-v15-turbo",
            )
        known = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"}
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            if key in known:
                kwargs[key] = _checked(key, value, known[key].type, source)
            else:
                extra[key] = value
        config = cls(**kwargs, extra=extra)
        config.validate(source)
        return config

    def to_dict(self) -> dict[str, Any]:
        """The `config.json` mapping: our fields plus every preserved unknown key.

        XL-only fields are omitted when unset, so a 2B config writes no keys it never had.
        """
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if f.name.startswith("encoder_") and value is None:
                continue
            if f.name == "is_turbo" and value is None:
                continue
            out[f.name] = value
        out.update(self.extra)
        return dict(sorted(out.items()))

    @classmethod
    def from_json_file(cls, path: Path) -> "ModelConfig":
        path = Path(path)
        if not path.is_file():
            raise ConfigError("config.json is missing", path=path, fix="pass a folder that holds an ACE-Step config.json")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"config.json is not valid JSON ({err})", path=path) from err
        return cls.from_dict(data, source=path)

    def write_json(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    # --- checks ---------------------------------------------------------------------
    def validate(self, source: Path | str | None = None) -> None:
        """Reject configs that cannot describe a working model, naming the field."""

        def bad(what: str) -> ConfigError:
            return ConfigError(what, path=source)

        for name in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "head_dim", "patch_size", "pool_window_size",
                     "audio_acoustic_hidden_dim", "text_hidden_dim", "timbre_hidden_dim"):
            if getattr(self, name) <= 0:
                raise bad(f"{name} must be positive, got {getattr(self, name)}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise bad(f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                      f"num_key_value_heads ({self.num_key_value_heads})")
        if self.in_channels != 3 * self.audio_acoustic_hidden_dim:
            raise bad(f"in_channels ({self.in_channels}) must be 3 x audio_acoustic_hidden_dim "
                      f"({self.audio_acoustic_hidden_dim}): context latents, chunk mask and x_t")
        if len(self.layer_types) != self.num_hidden_layers:
            raise bad(f"layer_types has {len(self.layer_types)} entries, num_hidden_layers is {self.num_hidden_layers}")
        unknown = sorted(set(self.layer_types) - {SLIDING, FULL})
        if unknown:
            raise bad(f"layer_types holds unknown attention kinds {unknown}; expected {SLIDING!r} or {FULL!r}")
        for name in ("num_attention_pooler_hidden_layers",):
            if getattr(self, name) > len(self.layer_types):
                raise bad(f"{name} ({getattr(self, name)}) exceeds the {len(self.layer_types)} layer_types entries")
        if self.use_sliding_window and (self.sliding_window is None or self.sliding_window <= 0):
            raise bad(f"use_sliding_window is true but sliding_window is {self.sliding_window!r}")
        if self.hidden_act != "silu":
            raise bad(f"hidden_act {self.hidden_act!r} is not supported (ACE-Step uses 'silu')")
        if self.rope_scaling not in (None, {}) and (self.rope_scaling or {}).get("rope_type", "default") != "default":
            raise bad(f"rope_scaling {self.rope_scaling!r} is not supported (ACE-Step uses default RoPE)")
        if self.condition_side().fsq_dim != self.condition_hidden_size:
            raise bad(f"fsq_dim ({self.fsq_dim}) must equal the condition width ({self.condition_hidden_size})")
        if self.timestep_sigma <= 0:
            raise bad(f"timestep_sigma must be positive, got {self.timestep_sigma}")
        if any(level < 2 for level in self.fsq_input_levels):
            raise bad(f"fsq_input_levels must all be >= 2, got {self.fsq_input_levels}")


def _checked(key: str, value: Any, annotation: str, source: Path | str | None) -> Any:
    """Coerce JSON scalars to the annotated type or raise a ConfigError naming the key."""
    optional = "None" in annotation
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key} must not be null", path=source)
    base = annotation.replace(" | None", "")
    ok: bool
    if base == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif base == "bool":
        ok = isinstance(value, bool)
    elif base == "str":
        ok = isinstance(value, str)
    elif base == "dict":
        ok = isinstance(value, dict)
    elif base == "list[int]":
        ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    elif base == "list[str]":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    else:  # pragma: no cover - a new field with an unhandled annotation is a programming error
        raise TypeError(f"unhandled annotation {annotation} for {key}")
    if not ok:
        raise ConfigError(f"{key} must be {base}{' or null' if optional else ''}, got {value!r}", path=source)
    return value
