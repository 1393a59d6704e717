"""`RunConfig`: the one typed configuration shared by the CLI, config files, presets and the UI.

Every field is declared once, with its help text in `metadata["help"]`, for front ends (a UI
form, a config reference) to show beside the value. Closed choices are Enums. The tree is frozen: derived
numbers (steps per epoch, total steps, effective batch) live in the trainer's `Plan`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, StrEnum
from types import MappingProxyType

CONFIG_VERSION = 3  # 2: loop.rope_dtype; 3: data.num_workers removed (migrations.py)


def option(default, help: str):
    """A dataclass field with help text (one declaration: the value and what it means)."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple or a default_factory for mutable defaults")
    return field(default=default, metadata={"help": help})


class AdapterKind(StrEnum):
    """What is trained and what an adapter file holds. A StrEnum: printed and stored as its value ("lokr"),
    since inference writes kinds into messages and file metadata (adapters/kinds.py has each kind's facts)."""

    LORA = "lora"
    DORA = "dora"
    LOKR = "lokr"
    LOHA = "loha"
    FULL = "full"


class AdapterBackend(StrEnum):
    """The library family that attaches, saves and loads a kind; fields of one family mean nothing to another."""

    PEFT = "peft"
    LYCORIS = "lycoris"
    FULL = "full"  # a full decoder fine-tune: no library, the decoder's own weights


ADAPTER_BACKENDS = MappingProxyType({  # the one place each kind's family is stated
    AdapterKind.LORA: AdapterBackend.PEFT, AdapterKind.DORA: AdapterBackend.PEFT,
    AdapterKind.LOKR: AdapterBackend.LYCORIS, AdapterKind.LOHA: AdapterBackend.LYCORIS,
    AdapterKind.FULL: AdapterBackend.FULL,
})
_BACKEND_NAMES = {AdapterBackend.PEFT: "PEFT", AdapterBackend.LYCORIS: "LyCORIS",
                  AdapterBackend.FULL: "decoder fine-tune"}


def _kind_help() -> str:
    """'lora, dora (PEFT), lokr, loha (LyCORIS) or full (decoder fine-tune)', from ADAPTER_BACKENDS."""
    groups = [(", ".join(k.value for k in AdapterKind if ADAPTER_BACKENDS[k] is backend), _BACKEND_NAMES[backend])
              for backend in AdapterBackend]
    text = ", ".join(f"{kinds} ({name})" for kinds, name in groups)
    head, _, last = text.rpartition(", ")
    return f"{head} or {last}"


class AttentionTargets(str, Enum):
    BOTH = "both"
    SELF = "self"
    CROSS = "cross"


class TimestepMode(str, Enum):
    LOGIT_NORMAL = "logit_normal"  # the pre-training sampler: max of two logit-normal draws
    DISCRETE = "discrete"  # the 8 turbo shift-3 values (reproduction of the upstream turbo trainer)


class Task(str, Enum):
    """What an adapter is trained to do (docs/training.md, Tasks; the conditioning is in train/tasks.py)."""

    TEXT2MUSIC = "text2music"  # a song from its caption and lyrics
    REPAINT = "repaint"  # regenerate a span of a song, the rest kept
    COVER = "cover"  # a new rendition from a song's semantic hints
    EXTRACT = "extract"  # one stem out of a mix (needs stems)
    COMPLETE = "complete"  # the full track around a partial one (needs stems)
    MIXED = "mixed"  # per sample, a task drawn from objective.task_mix


class LossWeighting(str, Enum):
    NONE = "none"
    MIN_SNR = "min_snr"


class OptimizerKind(str, Enum):
    ADAMW = "adamw"
    ADAMW8BIT = "adamw8bit"
    ADAFACTOR = "adafactor"
    PRODIGY = "prodigy"


class SchedulerKind(str, Enum):
    COSINE = "cosine"
    COSINE_RESTARTS = "cosine_restarts"
    LINEAR = "linear"
    CONSTANT = "constant"
    CONSTANT_WITH_WARMUP = "constant_with_warmup"


class Precision(str, Enum):
    AUTO = "auto"  # bf16 on CUDA with bf16 support, fp16 on other CUDA, fp32 on MPS and the CPU
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


class RopeDtype(str, Enum):
    """Rounding of the rotary frequencies (`inv_freq`) before the angles are computed in fp32.

    The official app and trainer cast the whole model (`model.to(bf16)`), which rounds the
    rotary `inv_freq` buffers to bf16 too; the released weights were run and fine-tuned that way.
    """

    MODEL = "model"  # rounded to the dtype the model computes in (bf16 -> bf16 frequencies), as the official app
    FP32 = "fp32"  # kept in fp32 whatever the compute dtype (what acetune did before this option)


class Normalization(str, Enum):
    """Loudness of a song before it is encoded (audio/prepare.py applies it)."""

    NONE = "none"
    PEAK = "peak"  # peak to -1 dBFS
    LUFS = "lufs"  # integrated loudness to -14 LUFS (pyloudnorm)


class LatentMode(str, Enum):
    SAMPLE = "sample"  # a posterior sample mean + std * eps, as ACE-Step trains
    MEAN = "mean"  # the posterior mean


class TimbreReference(str, Enum):
    """What the condition encoder gets as the timbre reference while caching (docs/preprocess.md)."""

    SILENCE = "silence"  # 750 frames of the silence latent: what inference uses without reference audio
    ZERO_FRAME = "zero-frame"  # one zero frame: what the upstream LoRA preprocessing used


class SaveDtype(str, Enum):
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


class BestMetric(str, Enum):
    EVAL = "eval"  # deterministic held-out eval loss
    MA5 = "ma5"  # moving average of the last 5 epoch train losses


@dataclass(frozen=True)
class DataConfig:
    cache: str = option("", "cache folder made by `acetune preprocess`")
    checkpoint_dir: str = option("", "ACE-Step checkpoints folder or DiT folder (the cache's fingerprint must match)")
    model: str | None = option(None, "DiT folder inside checkpoint_dir (default acestep-v15-turbo)")
    tag: str = option("", "activation tag (trigger word) the cache must have been made with; '' = the cache's own")
    crop_frames: int = option(1500, "random crop length in latent frames (25/s; 1500 = 60 s); 0 = whole songs")
    coverage_bins: int = option(32, "bins per song for coverage-aware crop offsets (long songs covered evenly)")
    bucketing: bool = option(True, "batch songs of similar length together so batches need no frame padding")
    batch_size: int = option(1, "samples per micro-batch")
    val_split: float = option(0.0, "share of the cache held out for the eval loss (0 = evaluate on the training set)")
    repeats: int = option(1, "times each song appears per epoch")


@dataclass(frozen=True)
class AdapterConfig:
    kind: AdapterKind = option(AdapterKind.LORA, _kind_help())
    rank: int = option(64, "adapter rank (LyCORIS: linear_dim)")
    alpha: float = option(128.0, "scale is alpha / rank (LyCORIS: linear_alpha)")
    dropout: float = option(0.1, "adapter dropout (LoRA / DoRA)")
    attention: AttentionTargets = option(AttentionTargets.BOTH, "which attention to adapt: both, self or cross")
    projections: tuple[str, ...] = option(("q_proj", "k_proj", "v_proj", "o_proj"), "attention projections to adapt")
    target_mlp: bool = option(False, "also adapt the SwiGLU MLP (gate_proj, up_proj, down_proj)")
    bias: str = option("none", "PEFT bias training: none, all or lora_only")
    factor: int = option(-1, "LyCORIS Kronecker factor (-1 = automatic)")
    decompose_both: bool = option(False, "LyCORIS LoKr: low-rank both Kronecker factors")
    use_tucker: bool = option(False, "LyCORIS Tucker decomposition")
    allow_full: bool = option(False, "explicit opt-in for a full decoder fine-tune (kind = full)")
    lr_attention: float = option(1.0, "full fine-tune: LR multiplier for attention weights")
    lr_mlp: float = option(1.0, "full fine-tune: LR multiplier for MLP weights")
    lr_norms: float = option(1.0, "full fine-tune: LR multiplier for norms and scale/shift tables")
    lr_embeddings: float = option(1.0, "full fine-tune: LR multiplier for patch/time/condition embeddings")


@dataclass(frozen=True)
class TaskMix:
    """Relative weights of the tasks a `mixed` run draws per sample (0 = not trained)."""

    text2music: float = option(1.0, "weight of text2music samples")
    repaint: float = option(1.0, "weight of repaint samples")
    cover: float = option(1.0, "weight of cover samples")
    extract: float = option(0.0, "weight of extract samples (needs stems)")
    complete: float = option(0.0, "weight of complete samples (needs stems)")


@dataclass(frozen=True)
class ObjectiveConfig:
    timesteps: TimestepMode = option(TimestepMode.LOGIT_NORMAL, "logit_normal (pre-training; mu/sigma from config.json) or discrete")
    cfg_ratio: float = option(0.15, "probability of replacing a sample's condition with the null embedding")
    loss_weighting: LossWeighting = option(LossWeighting.NONE, "none or min_snr")
    snr_gamma: float = option(5.0, "min-SNR gamma")
    adaptive_timestep_ratio: float = option(0.0, "share of each batch drawn from loss-weighted timestep bins (0 = off)")
    task: Task = option(Task.TEXT2MUSIC, "what the adapter learns: text2music, repaint, cover, extract, complete "
                                         "or mixed (a task per sample from task_mix)")
    task_mix: TaskMix = field(default_factory=TaskMix, metadata={"help": "task weights of a mixed run"})


@dataclass(frozen=True)
class OptimConfig:
    optimizer: OptimizerKind = option(OptimizerKind.ADAMW, "adamw (fused on CUDA), adamw8bit, adafactor or prodigy")
    lr: float = option(1e-4, "peak learning rate (Prodigy: use 1.0)")
    weight_decay: float = option(0.01, "decoupled weight decay (never on norms and biases)")
    betas: tuple[float, float] = option((0.9, 0.999), "Adam betas")
    eps: float = option(1e-8, "Adam epsilon")
    max_grad_norm: float = option(1.0, "gradient clipping by global norm (0 = off)")
    grad_accum: int = option(4, "micro-batches per optimizer step")


@dataclass(frozen=True)
class ScheduleConfig:
    scheduler: SchedulerKind = option(SchedulerKind.COSINE, "cosine, cosine_restarts, linear, constant or constant_with_warmup")
    warmup_steps: int = option(100, "linear warmup steps (clamped to 10 % of the run)")
    warmup_start_factor: float = option(0.1, "warmup starts at this fraction of lr")
    min_lr_ratio: float = option(0.01, "cosine / linear end at lr x this")
    restarts: int = option(4, "cycles of cosine_restarts")


@dataclass(frozen=True)
class LoopConfig:
    epochs: int = option(100, "passes over the cache")
    max_steps: int = option(0, "stop after this many optimizer steps (0 = no limit)")
    seed: int = option(42, "seed of every random draw (crops, order, noise, timesteps, dropout)")
    precision: Precision = option(Precision.AUTO, "auto, fp32, bf16 or fp16 (fp16 uses a GradScaler)")
    device: str = option("auto", "auto, cpu, cuda, cuda:1, mps")
    gradient_checkpointing: float = option(0.0, "share of decoder layers recomputed in backward (0..1)")
    recompute_mlp: bool = option(False, "keep only each decoder MLP's input for backward and recompute its gate/up "
                                        "projections there, in token chunks: less activation memory for a few "
                                        "percent more step time")
    compile: bool = option(False, "torch.compile each decoder layer: faster steps and less memory after a one-off "
                                  "compile of about a minute (pays on long runs)")
    fsdp: bool = option(True, "shard a full fine-tune over torchrun ranks with FSDP2 (false = DDP replicas)")
    honor_padding: bool = option(True, "mask padded frames and condition tokens (each sample sees only its own)")
    window_convention: str = option("eager", "sliding-window width convention: eager (|i-j| <= w) or flash (< w)")
    rope_dtype: RopeDtype = option(RopeDtype.MODEL, "rotary frequencies: model (rounded to the compute dtype, as the "
                                                    "official app's bf16 model) or fp32")
    eval_every: int = option(0, "evaluate every N optimizer steps (0 = at the end of each epoch)")
    eval_timesteps: tuple[float, ...] = option((0.1, 0.3, 0.5, 0.7, 0.9), "fixed t grid of the eval loss")
    eval_seed: int = option(1234, "seed of the eval noise (fixed across the run)")
    best_metric: BestMetric = option(BestMetric.EVAL, "what picks best/: eval loss or MA5 of the train loss")
    best_after: int = option(0, "best-checkpoint tracking starts after this many steps")
    min_delta: float = option(0.001, "an improvement must beat the best by this much")
    early_stop_patience: int = option(0, "stop after this many evaluations without improvement (0 = never)")
    ema_decay: float = option(0.0, "EMA of the trainable weights (e.g. 0.9999; 0 = off)")
    nan_patience: int = option(1, "halt with the last good state after this many non-finite losses in a row")


@dataclass(frozen=True)
class SaveConfig:
    output_dir: str = option("runs/acetune", "run folder (checkpoints/, best/, final/, events.jsonl, logs/)")
    save_every: int = option(500, "save a resumable checkpoint every N optimizer steps (0 = only at the end)")
    keep_last: int = option(3, "keep this many step checkpoints")
    resume_from: str | None = option(None, "checkpoint folder to resume, or 'latest'")


@dataclass(frozen=True)
class LogConfig:
    log_every: int = option(10, "report a step event every N optimizer steps")
    heavy_every: int = option(100, "per-layer gradient norms every N steps (0 = off)")
    tensorboard: bool = option(True, "write TensorBoard scalars under output_dir/logs")


@dataclass(frozen=True)
class AuditionConfig:
    every_steps: int = option(0, "render auditions every N optimizer steps (0 = not by steps)")
    every_epochs: int = option(0, "render auditions every N epochs (0 = not by epochs)")
    prompts: tuple[str, ...] = option((), "captions to render (the run's trigger word is added unless already there)")
    lyrics: str = option("", "lyrics for every audition (empty = instrumental)")
    language: str = option("en", "lyrics language code")
    seeds: tuple[int, ...] = option((42,), "noise seeds; every prompt is rendered with every seed")
    duration_s: float = option(10.0, "audition length in seconds")
    bpm: int = option(0, "bpm written into the prompt's metas (0 = N/A)")
    keyscale: str = option("", "key written into the metas, e.g. 'C major' (empty = N/A)")
    timesignature: str = option("", "time signature written into the metas, e.g. '4' (empty = N/A)")
    strengths: tuple[float, ...] = option((1.0,), "adapter strengths to render (a sweep for A/B)")
    include_base: bool = option(True, "also render the base model once (before the first step) for A/B")
    steps: int = option(0, "sampler steps (0 = the variant's recommendation)")
    shift: float = option(0.0, "sampler shift (0 = the variant's recommendation)")
    guidance: float = option(0.0, "CFG scale for base/sft (0 = the variant's recommendation; turbo has none)")
    add_trigger: bool = option(True, "put the run's activation tag into each prompt as it was trained")
    tasks: tuple[Task, ...] = option((Task.TEXT2MUSIC,), "tasks to render each prompt with: text2music, repaint, "
                                                         "cover (repaint and cover edit audition.source)")
    source: str = option("", "source song of repaint and cover auditions")
    repaint_start_s: float = option(0.0, "repaint auditions: start of the span to regenerate (seconds into source)")
    repaint_end_s: float = option(0.0, "repaint auditions: end of the span (0 = the middle third of the source)")
    format: str = option("wav", "audio format: wav, flac, mp3, ogg, opus, m4a or aac")


@dataclass(frozen=True)
class PreprocessConfig:
    """Options of `acetune preprocess`; those that change the cached tensors are in its fingerprint."""

    max_duration_s: float = option(240.0, "keep at most this many seconds from the start of each song (0 = whole "
                                          "songs)")
    normalize: Normalization = option(Normalization.NONE, "loudness before encoding: none, peak (-1 dBFS) or lufs "
                                                          "(-14 LUFS)")
    latent_mode: LatentMode = option(LatentMode.SAMPLE, "sample the VAE posterior (as ACE-Step trains) or take its "
                                                        "mean")
    seed: int = option(0, "seed of the posterior samples (per song, order-independent)")
    timbre_reference: TimbreReference = option(TimbreReference.SILENCE, "silence (as inference) or zero-frame "
                                                                        "(upstream LoRA preprocessing)")
    save_dtype: SaveDtype = option(SaveDtype.FP32, "fp32, bf16 or fp16 for stored tensors (bf16 halves the disk)")
    precision: Precision = option(Precision.AUTO, "compute dtype: auto (bf16 on CUDA, else fp32), fp32, bf16 or fp16")
    device: str = option("auto", "auto, cpu, cuda, cuda:1, mps")
    two_pass: bool = option(False, "low memory: VAE + text encoder first (then freed), then the condition encoder")
    chunk_s: float = option(30.0, "long songs are VAE-encoded in windows of this many seconds")
    overlap_s: float = option(2.0, "seconds of context on each side of a VAE window (their frames are discarded)")
    shard_max_mb: int = option(256, "largest cache shard file in MiB")
    flush_every: int = option(32, "write the cache index after this many newly computed songs (crash safety)")


@dataclass(frozen=True)
class RunConfig:
    config_version: int = option(CONFIG_VERSION, "schema version of this config")
    data: DataConfig = field(default_factory=DataConfig, metadata={"help": "where the data comes from"})
    adapter: AdapterConfig = field(default_factory=AdapterConfig, metadata={"help": "what is trained"})
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig, metadata={"help": "the loss"})
    optim: OptimConfig = field(default_factory=OptimConfig, metadata={"help": "the optimizer"})
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig, metadata={"help": "the learning-rate schedule"})
    loop: LoopConfig = field(default_factory=LoopConfig, metadata={"help": "the training loop"})
    save: SaveConfig = field(default_factory=SaveConfig, metadata={"help": "checkpoints and resume"})
    log: LogConfig = field(default_factory=LogConfig, metadata={"help": "progress and logs"})
    audition: AuditionConfig = field(default_factory=AuditionConfig,
                                     metadata={"help": "audio samples rendered during training"})
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig,
                                         metadata={"help": "how `acetune preprocess` makes the cache"})
