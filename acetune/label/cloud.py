"""What the cloud captioners (`--with openai`, `--with gemini`) share: the prompt, the audio they upload,
reading the answer, and counting calls and tokens for the run's summary.

API keys come from the environment only and are never printed, logged or written (nor part of the settings
fingerprint). The song goes up as a 16 kHz mono WAV of at most `MAX_AUDIO_S` seconds (its start).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf

from acetune.audio import load_audio
from acetune.errors import ConfigError, LabelError
from acetune.label.base import Proposal
from acetune.label.fields import check_values
from acetune.label.lm_format import parse_answer

CLOUD_FIELDS = ("caption", "genre")
MAX_RETRIES = 5  # attempts after a rate limit (429) or a server error, with exponential backoff
MAX_AUDIO_S = 120.0  # the start of a song tells its style; keeps uploads and cost bounded
AUDIO_RATE = 16_000
PROMPT = ("Describe this piece of music for a training dataset of a text-to-music model. Answer in exactly two "
          "lines:\ncaption: one sentence naming the style, mood, instruments and vocals\n"
          "genre: a few comma-separated genre tags")


@dataclass
class Usage:
    """Calls and tokens of one captioner in this run (what the provider bills)."""

    name: str
    counts: dict[str, int] = field(default_factory=lambda: {"calls": 0, "input tokens": 0, "output tokens": 0})

    def add(self, input_tokens: int | None, output_tokens: int | None) -> None:
        self.counts["calls"] += 1
        self.counts["input tokens"] += input_tokens or 0
        self.counts["output tokens"] += output_tokens or 0

    def summary(self) -> dict[str, int]:
        return {f"{self.name} {k}": v for k, v in self.counts.items()}


def api_key(*names: str, what: str) -> str:
    """The first of the environment variables `names` that is set; none is a ConfigError saying which to set."""
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    raise ConfigError(f"--with {what} needs an API key in the environment",
                      fix=f"export {names[0]}=... (it is never printed or written)")


def song_wav(path: Path) -> bytes:
    """The song's first `MAX_AUDIO_S` seconds as a 16 kHz mono 16-bit WAV file."""
    audio = load_audio(path, sample_rate=AUDIO_RATE, max_duration_s=MAX_AUDIO_S)
    buffer = io.BytesIO()
    sf.write(buffer, audio.waveform.mean(axis=0), AUDIO_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def read_caption(text: str, path: Path, fix: str) -> Proposal:
    """`caption:` / `genre:` lines of an answer -> checked values; an answer with neither is a LabelError."""
    raw = {k: v for k, v in parse_answer(text).items() if k in CLOUD_FIELDS}
    if not raw:
        raise LabelError(f"the answer holds no caption or genre: {text[:80]!r}", path=path, fix=fix)
    checked = check_values(raw)
    return Proposal(checked.values, checked.dropped)
