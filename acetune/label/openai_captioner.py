"""`--with openai`: a caption and genre from an OpenAI audio-capable chat model, through the official SDK.

The key is `OPENAI_API_KEY`; `OPENAI_BASE_URL` points the SDK at a compatible server. Rate limits and server
errors are retried by the SDK (exponential backoff, honouring the server's retry-after). See `cloud`.
"""

from __future__ import annotations

import base64
from pathlib import Path

from acetune.errors import ConfigError, LabelError
from acetune.label.base import Proposal
from acetune.label.cloud import CLOUD_FIELDS, MAX_AUDIO_S, MAX_RETRIES, PROMPT, Usage, api_key, read_caption, song_wav

DEFAULT_MODEL = "gpt-4o-audio-preview"


class OpenAICaptioner:
    kind = "openai"
    fields = CLOUD_FIELDS

    def __init__(self, model: str | None = None):
        try:
            from openai import OpenAI
        except ImportError:
            raise ConfigError("--with openai needs the OpenAI SDK", fix="pip install 'acetune[openai]'") from None
        self.model = model or DEFAULT_MODEL
        self.client = OpenAI(api_key=api_key("OPENAI_API_KEY", what="openai"), max_retries=MAX_RETRIES)
        self.source = f"openai:{self.model}"
        self.settings = {"model": self.model, "prompt": PROMPT, "max_audio_s": MAX_AUDIO_S}
        self.detail = f"{self.model} at {self.client.base_url}"
        self.usage = Usage("openai")

    def propose(self, audio_path: Path) -> Proposal:
        from openai import OpenAIError

        audio = base64.b64encode(song_wav(audio_path)).decode("ascii")
        content = [{"type": "text", "text": PROMPT},
                   {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}}]
        try:
            response = self.client.chat.completions.create(model=self.model, modalities=["text"],
                                                            messages=[{"role": "user", "content": content}])
        except OpenAIError as err:
            raise LabelError(f"the OpenAI API refused: {type(err).__name__}: {str(err)[:200]}", path=audio_path,
                             fix="check the model name (--openai-model), your quota and OPENAI_API_KEY") from None
        usage = response.usage
        self.usage.add(usage and usage.prompt_tokens, usage and usage.completion_tokens)
        return read_caption(response.choices[0].message.content or "", audio_path,
                            fix="try again, or another --openai-model")

    def summary(self) -> dict[str, int]:
        return self.usage.summary()
