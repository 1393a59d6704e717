"""Preprocess a labelled dataset into a fingerprinted cache, incrementally and crash-safely.

`preprocess(...)` is a generator of events (Started, Progressed, Skipped, Warned, Finished):
front ends render them, tests collect them. A sample is recomputed only when its input hash
(audio bytes + the exact caption prompt and lyric text + the tensor-changing options)
changed; songs that disappeared are dropped; bad audio files are skipped and reported.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

from acetune.atomic import check_writable
from acetune.audio import load_audio, open_regular_file, probe_audio
from acetune.config import LatentMode, Precision, PreprocessConfig, checked_preprocess, config_to_dict
from acetune.data.cache import FINGERPRINT_FILE, INDEX_FILE, CacheEntry, CacheReader, CacheWriter, read_index
from acetune.data.captions import genre_indices, select_caption
from acetune.data.dataset import Dataset, DatasetSample
from acetune.data.encoding import (MIN_DURATION_S, AudioTextFeatures, check_encodable,
                                   encode_audio_and_text, encode_condition, sample_generator, timbre_reference)
from acetune.data.fingerprint import Fingerprint, bundle_fingerprint, read_fingerprint, write_fingerprint
from acetune.data.prompts import build_caption_prompt, build_lyric_text, build_metas
from acetune.errors import AcetuneError, AudioError, CacheError, CacheMismatchError, ConfigError
from acetune.events import Event, Finished, Progressed, Skipped, Started, Warned
from acetune.locks import LOCK_FILE, hold_folder
from acetune.model.bundle import Bundle, resolve_bundle
from acetune.model.checkpoint import load_model, load_silence_latent, read_model_config
from acetune.model.devices import resolve_device, resolve_precision
from acetune.model.text_encoder import load_text_encoder
from acetune.model.vae import load_vae
from acetune.model.weights import parse_dtype, short_dtype_name

logger = logging.getLogger(__name__)

STAGING_DIR = ".pass1"
LYRIC_FORMAT = "language-header"  # the newer upstream format, identical to inference


# The options that change the cached tensors (their fingerprint), under the names caches have always stored.
_TENSOR_OPTIONS = {"max_duration_s": "max_duration_s", "normalize": "normalize", "latent_mode": "latent_mode",
                   "seed": "seed", "chunk_s": "chunk_s", "overlap_s": "overlap_s", "storage_dtype": "save_dtype",
                   "compute_dtype": "precision", "timbre_reference": "timbre_reference"}


def tensor_options(config: PreprocessConfig) -> dict:
    """The fingerprinted options (precision as resolved by `resolve_options`), plus the lyric format."""
    values = config_to_dict(config)
    return {**{stored: values[name] for stored, name in _TENSOR_OPTIONS.items()}, "lyric_format": LYRIC_FORMAT}


def resolve_options(config: PreprocessConfig) -> PreprocessConfig:
    """The options checked as a config file is (a misspelt choice is a named error before any model loads),
    with `auto` device and precision made concrete: the fingerprint records the dtype actually used."""
    config = checked_preprocess(config)
    device = resolve_device(config.device)
    precision = Precision(short_dtype_name(resolve_precision(config.precision, device)))
    return dataclasses.replace(config, device=str(device), precision=precision)


@dataclass(frozen=True)
class SamplePlan:
    sample: DatasetSample
    caption: str
    prompt: str
    lyric_text: str
    content_hash: str  # sha256 of the audio file's bytes
    input_hash: str
    tag: str = ""  # the activation tag in this caption (the sample's custom_tag or the dataset's)
    tag_position: str = "prepend"

    @property
    def id(self) -> str:
        return self.sample.relative


def content_hash(path: Path) -> str:
    """sha256 of the file's bytes; a FIFO or device is refused (OSError) instead of read forever."""
    digest = hashlib.sha256()
    with open_regular_file(path) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def plan_samples(dataset: Dataset, config: PreprocessConfig) -> tuple[list[SamplePlan], list[Skipped]]:
    """Final caption, prompt and lyric text per sample: the one place where labels become text.

    A file that cannot be read to hash it (gone since the scan, unreadable) is returned as Skipped."""
    genre_set = genre_indices(len(dataset.samples), dataset.genre_ratio)
    options = json.dumps(tensor_options(config), sort_keys=True)
    plans, unreadable = [], []
    for index, sample in enumerate(dataset.samples):
        labels = sample.labels
        caption = select_caption(labels, index, genre_set, dataset.tag)
        try:
            audio_hash = content_hash(sample.audio_path)
        except OSError as err:
            unreadable.append(Skipped(sample.audio_path, f"cannot be read: {err.strerror or err}"))
            continue
        prompt, lyric_text = sample_texts(sample, caption)
        input_hash = hashlib.sha256("\0".join([audio_hash, prompt, lyric_text, options]).encode()).hexdigest()
        plans.append(SamplePlan(sample, caption, prompt, lyric_text, audio_hash, input_hash,
                                labels.custom_tag or dataset.tag.tag, dataset.tag.position))
    return plans, unreadable


def sample_texts(sample: DatasetSample, caption: str) -> tuple[str, str]:
    """(caption prompt, lyric text) exactly as the cache is made from them (`dataset show` prints these)."""
    labels = sample.labels
    metas = build_metas(labels.bpm, labels.timesignature, labels.keyscale, _duration_s(sample))
    return build_caption_prompt(caption, metas), build_lyric_text(labels.lyrics, labels.language)


def _duration_s(sample: DatasetSample) -> int | None:
    """The labelled duration, else the whole file's length from its header (as upstream's metas)."""
    if sample.labels.duration is not None:
        return sample.labels.duration
    try:
        return int(probe_audio(sample.audio_path).duration_s)
    except AudioError:
        return None  # the file is unreadable: loading it reports why and skips it


def make_fingerprint(bundle: Bundle, config: PreprocessConfig) -> Fingerprint:
    return bundle_fingerprint(bundle, tensor_options(config))


def open_cache(out: Path, fingerprint: Fingerprint, rebuild: bool) -> list[CacheEntry]:
    """Entries to build on: those of a matching cache, none for a new (or rebuilt) one."""
    out = Path(out)
    if not out.exists():
        return []
    if not (out / INDEX_FILE).exists() and not (out / FINGERPRINT_FILE).exists():
        if any(item.name != LOCK_FILE for item in out.iterdir()):
            raise CacheError("the output folder exists and is not an acetune cache; refusing to write into it",
                             path=out, fix="choose a new or empty --out folder")
        return []
    if rebuild:
        _delete_cache_files(out)
        return []
    found = read_fingerprint(out)
    lines = found.differences(fingerprint)
    if lines:
        raise CacheMismatchError("the existing cache was made differently:\n  " + "\n  ".join(lines), path=out,
                                 fix="pass --rebuild to replace it, or choose another --out folder")
    return read_index(out) if (out / INDEX_FILE).exists() else []


def _delete_cache_files(out: Path) -> None:
    """Remove only what acetune wrote: never other files the user keeps in the folder."""
    for path in list(out.glob("shard-*.safetensors")) + [out / INDEX_FILE, out / FINGERPRINT_FILE]:
        if path.exists():
            path.unlink()
    if (out / STAGING_DIR).exists():
        shutil.rmtree(out / STAGING_DIR)


def preprocess(
    dataset: Dataset,
    checkpoint_dir: str | Path,
    out: str | Path,
    config: PreprocessConfig = PreprocessConfig(),
    *,
    model: str | None = None,
    rebuild: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[Event]:
    """Build or update the cache in `out`, holding its lock (`acetune.locks`) throughout: a second
    preprocess into the same folder is refused while this one runs. `model` picks the DiT folder
    inside `checkpoint_dir` (default acestep-v15-turbo)."""
    out = Path(out)
    config = resolve_options(config)
    _check_config(config)
    check_writable(out)  # before minutes of loading models
    with hold_folder(out, "acetune preprocess") as lock:
        if lock.took_over:
            yield Warned("stale-lock", lock.took_over)
        yield from _build_cache(dataset, resolve_bundle(checkpoint_dir, model), out, config, rebuild, should_stop)


def _build_cache(dataset: Dataset, bundle: Bundle, out: Path, config: PreprocessConfig, rebuild: bool,
                 should_stop: Callable[[], bool]) -> Iterator[Event]:
    fingerprint = make_fingerprint(bundle, config)
    existing = {e.id: e for e in open_cache(out, fingerprint, rebuild)}
    plans, unreadable = plan_samples(dataset, config)
    todo = [p for p in plans if existing.get(p.id) is None or existing[p.id].input_hash != p.input_hash]
    todo_ids = {p.id for p in todo}
    kept = [existing[p.id] for p in plans if p.id in existing and p.id not in todo_ids]
    out.mkdir(parents=True, exist_ok=True)
    write_fingerprint(out, fingerprint)
    writer = CacheWriter(out, kept, shard_max_bytes=config.shard_max_mb * 2**20)
    counts = {"samples": len(plans) + len(unreadable), "reused": len(kept), "computed": 0, "failed": len(unreadable),
              "removed": len(set(existing) - {p.id for p in plans})}
    yield Started("preprocess", total=len(todo) * (2 if config.two_pass else 1))
    yield from unreadable
    stopped = False
    try:
        run = _two_pass if config.two_pass else _one_pass
        for event in run(todo, bundle, out, config, writer, counts, should_stop):
            yield event
            if isinstance(event, Finished):
                stopped = True
    finally:
        writer.close()
    if not stopped:
        counts["cached"] = len(writer.entries)
        yield Finished("preprocess", "complete" if writer.entries else "failed", counts)


def _one_pass(todo, bundle, out, config, writer, counts, should_stop) -> Iterator[Event]:
    if not todo:
        return
    vae, text_encoder = _load_pass1(bundle, config)
    loaded = load_model(bundle.dit, components=("encoder",), dtype=config.precision.value, device=config.device)
    silence = loaded.silence_latent.cpu()
    reference = timbre_reference(config.timbre_reference, silence)
    for done, plan in enumerate(todo, 1):
        if should_stop():
            yield Finished("preprocess", "stopped", counts)
            return
        try:
            features, metadata, notes = _features(plan, config, vae, text_encoder, silence)
            states = encode_condition(loaded.model, features.text_hidden_states, features.lyric_hidden_states,
                                      reference)
        except Exception as err:  # one song's failure is reported (with its type and message) and the run goes on
            yield _skipped(plan, err, counts, config)
        else:
            yield from notes
            writer.add(_entry(plan, features, states, metadata),
                       _final_tensors(features.target_latents, states, config))
            counts["computed"] += 1
            if counts["computed"] % config.flush_every == 0:
                writer.flush()
        yield Progressed(done, len(todo), plan.id)


def _two_pass(todo, bundle, out, config, writer, counts, should_stop) -> Iterator[Event]:
    """Pass 1 (VAE + text encoder, then freed) into a staging cache; pass 2 (condition encoder)."""
    if not todo:
        return
    staging_dir = out / STAGING_DIR
    staged = {e.id: e for e in (read_index(staging_dir) if (staging_dir / INDEX_FILE).exists() else [])}
    need = {p.id for p in todo if p.id not in staged or staged[p.id].input_hash != p.input_hash}
    staging = CacheWriter(staging_dir, [staged[p.id] for p in todo if p.id not in need],
                          shard_max_bytes=config.shard_max_mb * 2**20)
    total = 2 * len(todo)
    failed: set[str] = set()
    try:
        if need:
            vae, text_encoder = _load_pass1(bundle, config)
            silence = load_silence_latent(bundle.dit, read_model_config(bundle.dit))
            for done, plan in enumerate(todo, 1):
                if should_stop():
                    yield Finished("preprocess", "stopped", counts)
                    return
                if plan.id in need:
                    try:
                        features, metadata, notes = _features(plan, config, vae, text_encoder, silence)
                    except Exception as err:  # reported with its type and message; the run goes on
                        failed.add(plan.id)
                        yield _skipped(plan, err, counts, config)
                    else:
                        yield from notes
                        staging.add(_entry(plan, features, None, metadata), features.tensors())
                yield Progressed(done, total, plan.id)
            del vae, text_encoder
            _free_memory(config.device)
    finally:
        staging.close()
    yield from _second_pass(todo, bundle, staging_dir, failed, config, writer, counts, should_stop)


def _second_pass(todo, bundle, staging_dir, failed, config, writer, counts, should_stop) -> Iterator[Event]:
    """Pass 2 of the low-memory mode: staged text features -> condition states, into the cache."""
    loaded = load_model(bundle.dit, components=("encoder",), dtype=config.precision.value, device=config.device)
    reference = timbre_reference(config.timbre_reference, loaded.silence_latent.cpu())
    reader = CacheReader(staging_dir)
    total = 2 * len(todo)
    for done, plan in enumerate(todo, len(todo) + 1):
        if should_stop():
            yield Finished("preprocess", "stopped", counts)
            return
        if plan.id not in failed:
            staged_entry = reader.entries[reader.index_of(plan.id)]
            tensors = reader.load(reader.index_of(plan.id))
            try:
                states = encode_condition(loaded.model, tensors["text_hidden_states"], tensors["lyric_hidden_states"],
                                          reference)
            except Exception as err:  # reported with its type and message; the run goes on
                yield _skipped(plan, err, counts, config)
            else:
                entry = CacheEntry(plan.id, "", plan.input_hash, staged_entry.latent_length, states.shape[0],
                                   metadata=staged_entry.metadata)
                writer.add(entry, _final_tensors(tensors["target_latents"], states, config))
                counts["computed"] += 1
                if counts["computed"] % config.flush_every == 0:
                    writer.flush()
        yield Progressed(done, total, plan.id)
    writer.flush()
    del reader
    shutil.rmtree(staging_dir)


def _load_pass1(bundle: Bundle, config: PreprocessConfig):
    dtype = parse_dtype(config.precision.value)
    return (load_vae(bundle.vae, dtype=dtype, device=config.device),
            load_text_encoder(bundle.text_encoder, dtype=dtype, device=config.device))


def _features(plan, config, vae, text_encoder, silence) -> tuple[AudioTextFeatures, dict, list[Warned]]:
    """Pass-1 work for one sample: (features, cache metadata, warnings). Raises for a song that cannot be used."""
    path = plan.sample.audio_path
    audio = load_audio(path, max_duration_s=config.max_duration_s, normalize=config.normalize)
    check_encodable(audio.waveform, path)
    features = encode_audio_and_text(
        audio.waveform, plan.prompt, plan.lyric_text, vae=vae, text_encoder=text_encoder, silence_latent=silence,
        generator=sample_generator(config.seed, plan.id), sample_latents=config.latent_mode is LatentMode.SAMPLE,
        chunk_s=config.chunk_s, overlap_s=config.overlap_s,
    )
    if not all(torch.isfinite(t).all() for t in features.tensors().values()):
        raise AudioError("encoding produced NaN or Inf values", path=path,
                         fix="preprocess with --compute-dtype fp32, or re-export the file")
    plan_meta = plan.sample.labels
    metadata = {
        "source": str(path), "content_hash": plan.content_hash, "caption": plan.caption, "prompt": plan.prompt,
        "lyrics": plan_meta.lyrics, "lyric_text": plan.lyric_text, "language": plan_meta.language,
        "bpm": plan_meta.bpm, "keyscale": plan_meta.keyscale, "timesignature": plan_meta.timesignature,
        "duration": plan_meta.duration, "genre": plan_meta.genre, "custom_tag": plan_meta.custom_tag,
        "tag": plan.tag, "tag_position": plan.tag_position,
        "source_duration_s": audio.source_duration_s, "truncated": audio.truncated, "silent": features.silent,
        "text_length": int(features.text_hidden_states.shape[0]),
        "lyric_length": int(features.lyric_hidden_states.shape[0]),
    }
    return features, metadata, [Warned("audio", f"{path}: {note}") for note in audio.notes]


def _skipped(plan: SamplePlan, err: Exception, counts: dict, config: PreprocessConfig) -> Skipped:
    """The report for one song that failed. A user-fixable problem gives its own message; anything else
    (an encoder error, out of memory) its type and message, and its traceback goes to the debug log."""
    counts["failed"] += 1
    _free_memory(config.device)  # after an out-of-memory error the next song gets the memory back
    if isinstance(err, AcetuneError):
        return Skipped(plan.sample.audio_path, err.what)
    logger.debug("preprocessing %s failed", plan.sample.audio_path, exc_info=err)
    return Skipped(plan.sample.audio_path, f"preprocessing failed: {type(err).__name__}: {err}")


def _check_config(config: PreprocessConfig) -> None:
    limit = config.max_duration_s
    if limit < 0 or 0 < limit < MIN_DURATION_S:
        raise ConfigError(f"max duration {limit:g} s would leave every song too short to train on",
                          fix=f"pass --max-duration of at least {MIN_DURATION_S:g} s, or 0 to keep whole songs")


def _entry(plan: SamplePlan, features, states: torch.Tensor | None, metadata: dict) -> CacheEntry:
    return CacheEntry(plan.id, "", plan.input_hash, int(features.target_latents.shape[0]),
                      0 if states is None else int(states.shape[0]), metadata=metadata)


def _final_tensors(latents: torch.Tensor, states: torch.Tensor, config: PreprocessConfig) -> dict[str, torch.Tensor]:
    dtype = parse_dtype(config.save_dtype.value)
    return {"target_latents": latents.to(dtype), "encoder_hidden_states": states.to(dtype)}


def _free_memory(device: str) -> None:
    gc.collect()
    if str(device).startswith("cuda"):
        torch.cuda.empty_cache()


__all__ = ["PreprocessConfig", "SamplePlan", "content_hash", "make_fingerprint", "plan_samples", "preprocess",
           "resolve_options", "tensor_options"]
