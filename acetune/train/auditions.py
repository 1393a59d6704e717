"""Auditions: render fixed prompts and seeds while training, so a user hears the adapter learn.

Prompts are conditioned once, before the first step (the text encoder and the condition
encoder are then freed); every audition afterwards costs only sampling and VAE decoding. The
files go under `<run>/auditions/` with `index.jsonl` (one line per file: step, epoch, prompt,
seed, strength, file). A failed render (out of memory, say) is reported as a warning and
training goes on. Rendering draws only from its own seeded generators inside a forked RNG,
so a run with auditions computes exactly what it computes without them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from acetune.adapters.strength import live_strength, supports_strength
from acetune.audio import TARGET_SAMPLE_RATE, write_audio
from acetune.config import AdapterKind, AuditionConfig
from acetune.errors import ConfigError
from acetune.events import Auditioned, Event, Warned
from acetune.generate import Track, decode_audio, encode_track, render_latents
from acetune.model.bundle import resolve_bundle
from acetune.model.checkpoint import load_model
from acetune.model.devices import forked_rng, mixed_precision
from acetune.model.sampling import SamplerSettings
from acetune.model.text_encoder import load_text_encoder
from acetune.model.variant import kind_of
from acetune.model.vae import load_vae

FOLDER = "auditions"
INDEX_FILE = "index.jsonl"
BASE_FOLDER = "base"


@dataclass
class Auditioner:
    config: AuditionConfig
    tracks: list[Track]
    states: list[torch.Tensor]  # condition-encoder states per track, CPU
    vae: object
    settings: SamplerSettings
    folder: Path
    last_step: int = -1

    @property
    def index_path(self) -> Path:
        return self.folder / INDEX_FILE

    def due(self, step: int, epoch_end_epoch: int | None = None) -> bool:
        """After an optimizer step (epoch_end_epoch None) or at the end of an epoch (its 1-based count)."""
        if step == self.last_step:
            return False
        if epoch_end_epoch is None:
            return bool(self.config.every_steps) and step % self.config.every_steps == 0
        return bool(self.config.every_epochs) and epoch_end_epoch % self.config.every_epochs == 0

    def render(self, session, ema, step: int, epoch: int, *, base: bool = False) -> Iterator[Event]:
        """Every prompt x seed x strength (or the base model once); never raises for a failed render."""
        self.last_step = step
        strengths = [None] if base else list(self.config.strengths)
        if not base and not supports_strength(session.adapter) and strengths != [1.0]:
            yield Warned("audition-strength", f"a live {session.adapter.kind.value} adapter renders only at "
                                              "strength 1.0; `acetune generate` sweeps strengths of the saved one")
            strengths = [1.0]
        folder = self.folder / (BASE_FOLDER if base else f"step_{step:07d}")
        try:
            with forked_rng(session.device), (ema.applied() if ema is not None and not base else nullcontext()):
                for index, (track, states) in enumerate(zip(self.tracks, self.states)):
                    for strength in strengths:
                        yield from self._render_one(session, folder, index, track, states, strength, step, epoch)
        except Exception as err:  # noqa: BLE001 - an audition must never stop training
            if session.device.type == "cuda":
                torch.cuda.empty_cache()
            yield Warned("audition-failed", f"audition at step {step} failed ({type(err).__name__}: {err}); "
                                            "training goes on")

    def _render_one(self, session, folder, index, track, states, strength, step, epoch) -> Iterator[Event]:
        seeds = list(self.config.seeds)
        names = [f"p{index}_seed{seed}" + ("" if strength is None else f"_s{strength:g}") for seed in seeds]
        paths = [folder / f"{name}.{self.config.format}" for name in names]
        if all(path.exists() for path in paths):
            return  # rendered before a resume; the same inputs give the same audio
        started = time.perf_counter()
        with _strength(session, step, strength), mixed_precision(session.device, session.compute_dtype):
            latents = render_latents(session.model, states, track.render_frames, seeds, self.settings,
                                     session.silence_latent)
        waveforms = decode_audio(self.vae, latents[:, :track.frames], track.samples)
        seconds = (time.perf_counter() - started) / len(seeds)
        for path, seed, waveform in zip(paths, seeds, waveforms):
            write_audio(path, waveform.numpy(), TARGET_SAMPLE_RATE, overwrite=True)
            record = {"step": step, "epoch": epoch, "prompt": track.caption, "prompt_index": index, "seed": seed,
                      "strength": strength, "base": strength is None, "file": str(path.relative_to(self.folder)),
                      "render_s": round(seconds, 3)}
            with open(self.index_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
            yield Auditioned(step, path, track.caption, seed, strength)


def prepare_auditions(session) -> Auditioner | None:
    """Condition the configured prompts and load the VAE, or None when no auditions are scheduled."""
    config: AuditionConfig = session.config.audition
    if not (config.every_steps or config.every_epochs) or not config.prompts or not session.dist.is_main:
        return None
    kind = kind_of(session.plan.variant)  # checked before seconds of loading
    if kind is None:
        raise ConfigError(f"auditions need the model's sampler, but its variant is unknown ({session.plan.variant})",
                          fix="turn auditions off (audition.every_steps = audition.every_epochs = 0)")
    settings = SamplerSettings.for_variant(kind, steps=config.steps or None, shift=config.shift or None,
                                           guidance=(config.guidance or None) if kind != "turbo" else None)
    data = session.config.data
    bundle = resolve_bundle(data.checkpoint_dir, data.model)
    trigger, position = session.trigger if config.add_trigger else ("", "prepend")
    tracks = [Track(caption=prompt, lyrics=config.lyrics, language=config.language, bpm=config.bpm or None,
                    keyscale=config.keyscale or None, timesignature=config.timesignature or None,
                    duration_s=config.duration_s).with_trigger(trigger, position) for prompt in config.prompts]
    device, dtype = session.device, session.compute_dtype
    with forked_rng(device):  # building the models draws random init weights: the run's RNG must not move
        text_encoder = load_text_encoder(bundle.text_encoder, dtype=dtype, device=device)
        # the encoder runs with the decoder's attention options (window convention, RoPE frequencies)
        encoder_model = load_model(bundle.dit, components=("encoder",), dtype=dtype, device=device,
                                   options=session.model.options).model
        states = [encode_track(encoder_model, text_encoder, track, session.silence_latent) for track in tracks]
        del text_encoder, encoder_model
        vae = load_vae(bundle.vae, dtype=dtype, device=device)
    folder = Path(session.config.save.output_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return Auditioner(config, tracks, states, vae, settings, folder)


def _strength(session, step: int, strength: float | None):
    """The adapter at `strength`; the base model is the untrained adapter at step 0, else strength 0.

    After step 0 only LoRA, LoKr and LoHa reduce exactly to the base at strength 0 (DoRA keeps its
    trained magnitudes, a full fine-tune has no delta), so those base renders are refused.
    """
    if strength is not None:
        return live_strength(session.adapter, strength)
    if step == 0:
        return nullcontext()
    if session.adapter.kind not in (AdapterKind.LORA, AdapterKind.LOKR, AdapterKind.LOHA):
        raise ConfigError(f"the base model cannot be rendered from a trained {session.adapter.kind.value} adapter",
                          fix="base auditions are rendered before the first step; start a new run to get them")
    return live_strength(session.adapter, 0.0)

