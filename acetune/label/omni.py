"""`--with omni`: a caption and genre from a local audio-language model, Qwen2.5-Omni's thinker (transformers).

Why this model: it is open (Apache-2.0), runs through transformers' own classes (no remote code), comes in
3B and 7B sizes that fit a consumer GPU (in 4-bit, too), and hears music well (strong on MMAU's music
questions in its report). Only the thinker (audio encoder + language model, text out) is loaded, as
transformers' own example does from the full `Qwen/Qwen2.5-Omni-7B` repository; the talker is left out.

The input is built here rather than by `Qwen2_5OmniProcessor`, which also needs torchvision for its image
and video parts. Facts (transformers 5's Qwen2.5-Omni processor and model card): a ChatML conversation
with the card's default system prompt, the song in the user turn as `<|audio_bos|><|AUDIO|><|audio_eos|>`
with `<|AUDIO|>` repeated once per audio-encoder frame; the audio is Whisper features of 16 kHz mono,
padded to (and cut at) the feature extractor's 30 s window. The question and the answer reading are the
cloud captioners' (`cloud.PROMPT`, `cloud.read_caption`). Decoding is greedy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from acetune.audio import load_audio
from acetune.errors import ConfigError, LabelError, ModelLoadError
from acetune.label.base import Proposal
from acetune.label.cloud import AUDIO_RATE, CLOUD_FIELDS, PROMPT, read_caption

DEFAULT_MODEL = "Qwen/Qwen2.5-Omni-7B"
SYSTEM_PROMPT = ("You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving "
                 "auditory and visual inputs, as well as generating text and speech.")  # the model card's default
AUDIO_TOKENS = ("<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>")
MAX_NEW_TOKENS = 200  # two short lines
QUANT_BITS = (4, 8)


def chat_text(audio_tokens: int) -> str:
    """The exact text the thinker reads: system, user (the song, then the question), the assistant's turn."""
    bos, audio, eos = AUDIO_TOKENS
    return (f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n{bos}{audio * audio_tokens}{eos}"
            f"{PROMPT}<|im_end|>\n<|im_start|>assistant\n")


class OmniCaptioner:
    kind = "omni"
    fields = CLOUD_FIELDS

    def __init__(self, model: str, *, device: torch.device, dtype: torch.dtype, bits: int | None = None,
                 logits_processors: Sequence[Any] = ()):
        """`logits_processors` are passed to `generate` (a script in tests)."""
        from transformers import AutoTokenizer, Qwen2_5OmniThinkerForConditionalGeneration, WhisperFeatureExtractor

        quantization = quantization_config(bits, device, dtype)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model)
            self.features = WhisperFeatureExtractor.from_pretrained(model)
            self.model = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(
                model, dtype=dtype, quantization_config=quantization,
                **({"device_map": {"": str(device)}} if quantization else {})).eval()
        except (OSError, ValueError, KeyError) as err:
            raise ModelLoadError(f"cannot load Qwen2.5-Omni ({type(err).__name__}: {str(err).splitlines()[0]})",
                                 path=model, fix=f"pass --omni-model a Qwen2.5-Omni folder or Hub id, e.g. "
                                                 f"{DEFAULT_MODEL}") from err
        if quantization is None:
            self.model.to(device)
        unknown = (None, self.tokenizer.unk_token_id)
        missing = [t for t in AUDIO_TOKENS if self.tokenizer.convert_tokens_to_ids(t) in unknown]
        if missing:
            raise ModelLoadError(f"the tokenizer has no {', '.join(missing)}: not a Qwen2.5-Omni model", path=model,
                                 fix=f"pass --omni-model a Qwen2.5-Omni folder or Hub id, e.g. {DEFAULT_MODEL}")
        self.device = device
        self.logits_processors = list(logits_processors)
        name = Path(model).name if Path(model).exists() else model
        self.source = f"omni:{name}"
        window = float(self.features.chunk_length)
        self.settings = {"model": name, "prompt": PROMPT, "max_audio_s": window, "bits": bits}
        self.detail = f"{name} on {device}" + (f", {bits}-bit" if bits else f", {str(dtype).removeprefix('torch.')}")

    def inputs(self, audio_path: Path) -> dict[str, torch.Tensor]:
        """The song's Whisper features and the chat text with one `<|AUDIO|>` per encoder frame."""
        window = float(self.features.chunk_length)
        audio = load_audio(audio_path, sample_rate=AUDIO_RATE, max_duration_s=window)
        features = self.features(audio.waveform.mean(axis=0), sampling_rate=AUDIO_RATE, padding="max_length",
                                 return_attention_mask=True, return_tensors="pt")
        mask = features["attention_mask"]
        _, frames = self.model.model.audio_tower._get_feat_extract_output_lengths(mask.sum(-1))
        text = self.tokenizer(chat_text(int(frames[0])), return_tensors="pt", add_special_tokens=False)
        return {"input_ids": text.input_ids, "attention_mask": text.attention_mask,
                "input_features": features["input_features"].to(self.model.dtype), "feature_attention_mask": mask}

    def propose(self, audio_path: Path) -> Proposal:
        from transformers import LogitsProcessorList

        inputs = {k: v.to(self.device) for k, v in self.inputs(audio_path).items()}
        try:
            with torch.inference_mode():
                out = self.model.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS, do_sample=False,
                                          logits_processor=LogitsProcessorList(self.logits_processors))
        except (RuntimeError, ValueError) as err:
            raise LabelError(f"Qwen2.5-Omni failed: {str(err).splitlines()[0]}", path=audio_path,
                             fix="try --device cpu, or --omni-bits 4 when the GPU runs out of memory") from err
        answer = self.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        return read_caption(answer, audio_path, fix="try again, or another --omni-model")


def quantization_config(bits: int | None, device: torch.device, dtype: torch.dtype) -> Any:
    """4- or 8-bit weights through bitsandbytes (CUDA only); None loads the weights in `dtype`."""
    if bits is None:
        return None
    if bits not in QUANT_BITS:
        raise ConfigError(f"--omni-bits {bits}: not 4 or 8", fix="use --omni-bits 4 or 8, or leave it out")
    if device.type != "cuda":
        raise ConfigError(f"--omni-bits {bits} needs a CUDA GPU (bitsandbytes); the device is {device}",
                          fix="leave --omni-bits out on this device (the model loads in float32 on the CPU)")
    from transformers import BitsAndBytesConfig
    from transformers.utils import is_bitsandbytes_available

    if not is_bitsandbytes_available():
        raise ConfigError(f"--omni-bits {bits} needs bitsandbytes, which is not installed",
                          fix="pip install bitsandbytes, or leave --omni-bits out")
    if bits == 4:
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype)
    return BitsAndBytesConfig(load_in_8bit=True)


def open_omni(checkpoint_dir: Path, model: str | None, device: torch.device, dtype: torch.dtype,
              bits: int | None = None) -> OmniCaptioner:
    """`--omni-model` as given (a folder or Hub id), else the one `Qwen2.5-Omni*/` folder in the checkpoints
    folder, else `DEFAULT_MODEL` (downloaded on first use)."""
    chosen = _checked(model) if model else _local_omni(checkpoint_dir) or DEFAULT_MODEL
    return OmniCaptioner(chosen, device=device, dtype=dtype, bits=bits)


def _checked(model: str) -> str:
    """A Hub id (`owner/name`) as given; anything else names a folder, which must exist."""
    looks_like_id = model.count("/") == 1 and not model.startswith((".", "/", "~")) and "\\" not in model
    if not Path(model).expanduser().is_dir() and not looks_like_id:
        raise ModelLoadError("Qwen2.5-Omni folder not found", path=model,
                             fix=f"pass --omni-model an existing folder or a Hub id, e.g. {DEFAULT_MODEL}")
    return str(Path(model).expanduser()) if Path(model).expanduser().is_dir() else model


def _local_omni(checkpoint_dir: Path) -> str | None:
    root = Path(checkpoint_dir)
    found = sorted(p for p in root.iterdir() if p.is_dir() and p.name.lower().startswith("qwen2.5-omni")
                   and (p / "config.json").is_file()) if root.is_dir() else []
    if len(found) > 1:
        raise ModelLoadError(f"which Qwen2.5-Omni? {len(found)} folders ({', '.join(p.name for p in found)})",
                             path=root, fix="pass --omni-model with one of them")
    return str(found[0]) if found else None
