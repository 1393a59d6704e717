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
from acetune.config import AuditionConfig, Task
from acetune.errors import ConfigError
from acetune.events import Auditioned, Event, Warned
from acetune.generate import Track, decode_audio, encode_track, render_latents
from acetune.generate.sources import Source, load_source, repaint_frames, source_context
from acetune.model.bundle import resolve_bundle
from acetune.model.checkpoint import load_model
from acetune.model.devices import forked_rng, mixed_precision
from acetune.model.sampling import SamplerSettings
from acetune.model.text_encoder import load_text_encoder
from acetune.model.variant import kind_of
from acetune.model.vae import load_vae
from acetune.train.tasks import task_modules

FOLDER = "auditions"
INDEX_FILE = "index.jsonl"
BASE_FOLDER = "base"


@dataclass
class Auditioner:
    config: AuditionConfig
    tracks: list[Track]
    states: list[torch.Tensor]  # condition-encoder states per track, CPU
    contexts: list[torch.Tensor | None]  # an edit task's context latents per track (None = text2music)
    names: list[str]  # file-name stem per track: p<prompt index>, then _<task> for repaint and cover
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
                for index, track in enumerate(self.tracks):
                    for strength in strengths:
                        yield from self._render_one(session, folder, index, track, strength, step, epoch)
        except Exception as err:  # noqa: BLE001 - an audition must never stop training
            if session.device.type == "cuda":
                torch.cuda.empty_cache()
            yield Warned("audition-failed", f"audition at step {step} failed ({type(err).__name__}: {err}); "
                                            "training goes on")

    def _render_one(self, session, folder, index, track, strength, step, epoch) -> Iterator[Event]:
        seeds = list(self.config.seeds)
        names = [f"{self.names[index]}_seed{seed}" + ("" if strength is None else f"_s{strength:g}") for seed in seeds]
        paths = [folder / f"{name}.{self.config.format}" for name in names]
        if all(path.exists() for path in paths):
            return  # rendered before a resume; the same inputs give the same audio
        started = time.perf_counter()
        with _strength(session, step, strength), mixed_precision(session.device, session.compute_dtype):
            latents = render_latents(session.model, self.states[index], track.render_frames, seeds, self.settings,
                                     session.silence_latent, context=self.contexts[index])
        waveforms = decode_audio(self.vae, latents[:, :track.frames], track.samples)
        seconds = (time.perf_counter() - started) / len(seeds)
        for path, seed, waveform in zip(paths, seeds, waveforms):
            write_audio(path, waveform.numpy(), TARGET_SAMPLE_RATE, overwrite=True)
            record = {"step": step, "epoch": epoch, "prompt": track.caption, "prompt_index": index,
                      "task": track.task.value, "seed": seed,
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
    source_path = _source_path(config)  # a missing song is named before seconds of loading
    plans = [(index, prompt, task) for index, prompt in enumerate(config.prompts) for task in config.tasks]
    device, dtype = session.device, session.compute_dtype
    with forked_rng(device):  # building the models draws random init weights: the run's RNG must not move
        vae = load_vae(bundle.vae, dtype=dtype, device=device)
        sources = _sources(config, source_path, vae)
        tracks = [_track(config, prompt, task, sources).with_trigger(trigger, position) for _, prompt, task in plans]
        text_encoder = load_text_encoder(bundle.text_encoder, dtype=dtype, device=device)
        # the encoder runs with the decoder's attention options (window convention, RoPE frequencies)
        parts = ("encoder", *task_modules(sources))
        encoder_model = load_model(bundle.dit, components=parts, dtype=dtype, device=device,
                                   options=session.model.options).model
        states = [encode_track(encoder_model, text_encoder, track, session.silence_latent) for track in tracks]
        contexts = [None if track.task not in sources else
                    source_context(encoder_model, sources[track.task], track.render_frames, session.silence_latent)
                    for track in tracks]
        del text_encoder, encoder_model
    folder = Path(session.config.save.output_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"p{index}" + ("" if task == Task.TEXT2MUSIC else f"_{task.value}") for index, _, task in plans]
    return Auditioner(config, tracks, states, contexts, names, vae, settings, folder)


def _source_path(config: AuditionConfig) -> Path | None:
    if not any(task in (Task.REPAINT, Task.COVER) for task in config.tasks):
        return None
    path = Path(config.source)
    if not path.is_file():
        raise ConfigError("the audition source song does not exist", path=path, fix="check audition.source")
    return path


def _sources(config: AuditionConfig, path: Path | None, vae) -> dict[Task, Source]:
    """The encoded source song per edit task; a repaint span of 0 is the middle third of the song."""
    sources: dict[Task, Source] = {}
    for task in (task for task in config.tasks if task in (Task.REPAINT, Task.COVER)):
        if task == Task.COVER:
            sources[task] = load_source(task, path, vae)
            continue
        whole = sources.get(Task.COVER) or load_source(Task.COVER, path, vae)
        seconds = whole.duration_s
        start, end = ((config.repaint_start_s, config.repaint_end_s) if config.repaint_end_s > 0
                      else (seconds / 3, 2 * seconds / 3))
        sources[task] = Source(Task.REPAINT, whole.latents, path, repaint_frames(start, end, whole.latents.shape[0],
                                                                                path))
    return sources


def _track(config: AuditionConfig, prompt: str, task: Task, sources: dict[Task, Source]) -> Track:
    """An edit keeps its source's length; text2music renders audition.duration_s."""
    duration = sources[task].duration_s if task in sources else config.duration_s
    return Track(caption=prompt, lyrics=config.lyrics, language=config.language, bpm=config.bpm or None,
                 keyscale=config.keyscale or None, timesignature=config.timesignature or None, duration_s=duration,
                 task=task)


def _strength(session, step: int, strength: float | None):
    """The adapter at `strength`; the base model is the untrained adapter at step 0, else strength 0.

    After step 0 only LoRA, LoKr and LoHa reduce exactly to the base at strength 0 (DoRA keeps its
    trained magnitudes, a full fine-tune has no delta), so those base renders are refused.
    """
    if strength is not None:
        return live_strength(session.adapter, strength)
    if step == 0:
        return nullcontext()
    if not supports_strength(session.adapter):
        raise ConfigError(f"the base model cannot be rendered from a trained {session.adapter.kind.value} adapter",
                          fix="base auditions are rendered before the first step; start a new run to get them")
    return live_strength(session.adapter, 0.0)

