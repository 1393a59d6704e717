"""`--with openai`: a caption and genre from an OpenAI audio-capable chat model, through the official SDK.

The API key comes from the environment (`OPENAI_API_KEY`) and is never printed, logged or written; the
SDK's own retries (exponential backoff, honouring the server's retry-after on 429 and 5xx) handle rate
limits (`MAX_RETRIES`). `OPENAI_BASE_URL` points it at a compatible server. The song is sent as a 16 kHz
mono WAV of at most `MAX_AUDIO_S` seconds (the start). The run's summary counts calls and tokens.
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import soundfile as sf

from acetune.audio import load_audio
from acetune.errors import ConfigError, LabelError
from acetune.label.base import Proposal
from acetune.label.fields import check_values
from acetune.label.lm_format import parse_answer

DEFAULT_MODEL = "gpt-4o-audio-preview"
MAX_RETRIES = 5
MAX_AUDIO_S = 120.0  # the start of the song tells its style; keeps uploads and cost bounded
AUDIO_RATE = 16_000
PROMPT = ("Describe this piece of music for a training dataset of a text-to-music model. Answer in exactly two "
          "lines:\ncaption: one sentence naming the style, mood, instruments and vocals\n"
          "genre: a few comma-separated genre tags")


class OpenAICaptioner:
    kind = "openai"
    fields = ("caption", "genre")

    def __init__(self, model: str | None = None):
        try:
            from openai import OpenAI
        except ImportError:
            raise ConfigError("--with openai needs the OpenAI SDK", fix="pip install 'acetune[openai]'") from None
        if not os.environ.get("OPENAI_API_KEY"):
            raise ConfigError("--with openai needs an API key in the environment",
                              fix="export OPENAI_API_KEY=... (it is never printed or written)")
        self.model = model or DEFAULT_MODEL
        self.client = OpenAI(max_retries=MAX_RETRIES)  # key and base URL from the environment
        self.source = f"openai:{self.model}"
        self.settings = {"model": self.model, "prompt": PROMPT, "max_audio_s": MAX_AUDIO_S}
        self.detail = f"{self.model} at {self.client.base_url}"
        self.usage = {"calls": 0, "input tokens": 0, "output tokens": 0}

    def propose(self, audio_path: Path) -> Proposal:
        from openai import OpenAIError

        content = [{"type": "text", "text": PROMPT},
                   {"type": "input_audio", "input_audio": {"data": _wav_base64(audio_path), "format": "wav"}}]
        try:
            response = self.client.chat.completions.create(model=self.model, modalities=["text"],
                                                            messages=[{"role": "user", "content": content}])
        except OpenAIError as err:
            raise LabelError(f"the OpenAI API refused: {type(err).__name__}: {str(err)[:200]}", path=audio_path,
                             fix="check the model name (--openai-model), your quota and OPENAI_API_KEY") from None
        self.usage["calls"] += 1
        if response.usage is not None:
            self.usage["input tokens"] += response.usage.prompt_tokens
            self.usage["output tokens"] += response.usage.completion_tokens
        text = response.choices[0].message.content or ""
        raw = {k: v for k, v in parse_answer(text).items() if k in self.fields}
        if not raw:
            raise LabelError(f"the answer holds no caption or genre: {text[:80]!r}", path=audio_path,
                             fix="try again, or another --openai-model")
        checked = check_values(raw)
        return Proposal(checked.values, checked.dropped)

    def summary(self) -> dict[str, int]:
        return {f"openai {k}": v for k, v in self.usage.items()}


def _wav_base64(path: Path) -> str:
    audio = load_audio(path, sample_rate=AUDIO_RATE, max_duration_s=MAX_AUDIO_S)
    buffer = io.BytesIO()
    sf.write(buffer, audio.waveform.mean(axis=0), AUDIO_RATE, format="WAV", subtype="PCM_16")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
