"""`--with gemini`: a caption and genre from a Gemini model, through Google's official SDK (google-genai).

The key is `GEMINI_API_KEY` (or `GOOGLE_API_KEY`); `GOOGLE_GEMINI_BASE_URL` points the SDK at another
endpoint. Rate limits (429) and server errors are retried by the SDK with exponential backoff
(`MAX_RETRIES` attempts, from `RETRY_DELAY_S`). See `cloud`.
"""

from __future__ import annotations

import os
from pathlib import Path

from acetune.errors import ConfigError, LabelError
from acetune.label.base import Proposal
from acetune.label.cloud import CLOUD_FIELDS, MAX_AUDIO_S, MAX_RETRIES, PROMPT, Usage, api_key, read_caption, song_wav

DEFAULT_MODEL = "gemini-2.5-flash"
RETRY_DELAY_S = 1.0
RETRY_STATUSES = (408, 429, 500, 502, 503, 504)
BASE_URL_VARIABLE = "GOOGLE_GEMINI_BASE_URL"


class GeminiCaptioner:
    kind = "gemini"
    fields = CLOUD_FIELDS

    def __init__(self, model: str | None = None):
        try:
            from google import genai
            from google.genai import types
        except ImportError:
            raise ConfigError("--with gemini needs Google's GenAI SDK", fix="pip install 'acetune[gemini]'") from None
        self.model = model or DEFAULT_MODEL
        retry = types.HttpRetryOptions(attempts=MAX_RETRIES + 1, initial_delay=RETRY_DELAY_S,
                                       http_status_codes=list(RETRY_STATUSES))
        options = types.HttpOptions(base_url=os.environ.get(BASE_URL_VARIABLE), retry_options=retry)
        key = api_key("GEMINI_API_KEY", "GOOGLE_API_KEY", what="gemini")
        self.client = genai.Client(api_key=key, http_options=options)
        self.source = f"gemini:{self.model}"
        self.settings = {"model": self.model, "prompt": PROMPT, "max_audio_s": MAX_AUDIO_S}
        self.detail = self.model
        self.usage = Usage("gemini")

    def propose(self, audio_path: Path) -> Proposal:
        from google.genai import errors, types

        audio = types.Part.from_bytes(data=song_wav(audio_path), mime_type="audio/wav")
        try:
            response = self.client.models.generate_content(model=self.model, contents=[PROMPT, audio])
        except errors.APIError as err:
            raise LabelError(f"the Gemini API refused: {type(err).__name__}: {str(err)[:200]}", path=audio_path,
                             fix="check the model name (--gemini-model), your quota and GEMINI_API_KEY") from None
        meta = response.usage_metadata
        self.usage.add(meta and meta.prompt_token_count, meta and meta.candidates_token_count)
        return read_caption(response.text or "", audio_path, fix="try again, or another --gemini-model")

    def summary(self) -> dict[str, int]:
        return self.usage.summary()
