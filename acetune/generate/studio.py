"""`Studio`: a checkpoint bundle loaded for generation, with any mix of adapters patched in.

One object holds the DiT (decoder, condition encoder, null condition), the VAE, the text
encoder and the silence latent on one device, so `acetune generate`, the demo and scripts
render through one path. Adapters are patched into the decoder weights (CPU backups of the
touched weights only), so several adapters of any kinds mix with their own strengths and
unloading restores the base bit-exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from acetune.adapters.patcher import AdapterPatcher, LoadedAdapter
from acetune.adapters.provenance import trained_rope_dtype
from acetune.config import Precision
from acetune.config.schema import RopeDtype
from acetune.errors import ConfigError, ModelLoadError
from acetune.generate.render import decode_audio, encode_track, render_latents
from acetune.generate.sources import Source, load_source, source_context
from acetune.generate.tracks import Track
from acetune.model.acestep import AceStepModel
from acetune.model.bundle import resolve_bundle
from acetune.model.checkpoint import load_model
from acetune.model.devices import resolve_device, resolve_precision
from acetune.model.masks import AttentionOptions
from acetune.model.sampling import SamplerSettings
from acetune.model.text_encoder import TextEncoder, load_text_encoder
from acetune.model.variant import Variant
from acetune.model.vae import load_vae

GENERATION_COMPONENTS = ("decoder", "encoder", "null_condition_emb")
COVER_COMPONENTS = ("tokenizer", "detokenizer")  # the semantic hints of a cover's source


def rope_dtype_for(metadatas: Sequence[dict[str, str]]) -> tuple[RopeDtype, str]:
    """RoPE convention to render adapters with these headers: the one they were trained with, and why.

    Without adapters, or when they disagree, the official app's (`model`).
    """
    trained = [trained_rope_dtype(metadata) for metadata in metadatas]
    if not trained:
        return RopeDtype.MODEL, "the official app's convention"
    if len({value for value, _ in trained}) > 1:
        return RopeDtype.MODEL, "the official app's convention; the adapters were trained with different ones"
    value, how = trained[0]
    return value, f"as trained ({how})"


@dataclass
class Studio:
    model: AceStepModel
    vae: object  # diffusers AutoencoderOobleck
    text_encoder: TextEncoder
    silence_latent: torch.Tensor  # [1, Ts, C], CPU float32
    variant: Variant
    dit_folder: Path
    patcher: AdapterPatcher = field(init=False)

    def __post_init__(self) -> None:
        self.patcher = AdapterPatcher(self.model.decoder, variant=self.variant.name)

    @classmethod
    def open(cls, checkpoint_dir: str | Path, *, model: str | None = None, device: str = "auto",
             precision: Precision = Precision.AUTO, variant: str | None = None,
             rope_dtype: RopeDtype | str = RopeDtype.MODEL, cover: bool = False) -> Studio:
        """Load DiT, VAE and text encoder from a checkpoints folder (or a DiT folder with siblings).

        `rope_dtype`: RoPE frequencies rounded to the compute dtype as the official app does
        (`model`), or fp32; `rope_dtype_for` picks the one the adapters were trained with. `cover`
        also loads the tokenizer and detokenizer (the cover task's source hints).
        """
        bundle = resolve_bundle(checkpoint_dir, model)
        torch_device = resolve_device(device)
        dtype = resolve_precision(precision, torch_device)
        components = GENERATION_COMPONENTS + (COVER_COMPONENTS if cover else ())
        loaded = load_model(bundle.dit, components=components, dtype=dtype, device=torch_device,
                            variant=variant, options=AttentionOptions(rope_dtype=rope_dtype))
        if loaded.silence_latent is None:
            raise ModelLoadError("the model folder has no silence_latent.pt (generation starts from it)",
                                 path=bundle.dit, fix="download silence_latent.pt into the model folder")
        loaded.model.eval().requires_grad_(False)
        vae = load_vae(bundle.vae, dtype=dtype, device=torch_device)
        text_encoder = load_text_encoder(bundle.text_encoder, dtype=dtype, device=torch_device)
        return cls(loaded.model, vae, text_encoder, loaded.silence_latent.float().cpu(), loaded.variant, bundle.dit)

    # --- adapters ------------------------------------------------------------------------
    def add_adapter(self, path: str | Path, strength: float = 1.0, *, alpha: float | None = None) -> LoadedAdapter:
        """Patch an adapter in; `alpha` applies only if its file states none (a bare PEFT file)."""
        return self.patcher.load(path, strength, alpha=alpha)

    @property
    def rope_dtype(self) -> RopeDtype:
        return self.model.options.rope_dtype

    @property
    def adapters(self) -> tuple[LoadedAdapter, ...]:
        return self.patcher.loaded

    # --- rendering -----------------------------------------------------------------------
    def load_source(self, task, path: str | Path, *, start_s: float | None = None,
                    end_s: float | None = None) -> Source:
        """The song a repaint or cover edits, encoded by this studio's VAE."""
        return load_source(task, Path(path), self.vae, start_s=start_s, end_s=end_s)

    def settings(self, **overrides) -> SamplerSettings:
        """The variant's recommended sampler settings with `overrides` (None values are ignored)."""
        kind = self.variant.kind
        if kind is None:
            raise ConfigError(f"the model's variant is unknown ({self.variant.evidence}), so its sampler is too",
                              fix="pass --variant turbo, base or sft")
        return SamplerSettings.for_variant(kind, **overrides)

    def render(self, track: Track, seeds: Sequence[int], settings: SamplerSettings, *,
               on_step: Callable[[int, int], None] | None = None, source: Source | None = None) -> torch.Tensor:
        """One track at each seed -> waveforms [len(seeds), 2, track.samples] (48 kHz, float32, CPU).

        `source`: the song a repaint or cover edits (`load_source`); the track's task must match it.
        """
        states = encode_track(self.model, self.text_encoder, track, self.silence_latent)
        context = None if source is None else source_context(self.model, source, track.render_frames,
                                                             self.silence_latent)
        latents = render_latents(self.model, states, track.render_frames, seeds, settings, self.silence_latent,
                                 on_step=on_step, context=context)
        return decode_audio(self.vae, latents[:, :track.frames], track.samples)
