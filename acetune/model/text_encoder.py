"""The frozen text encoder (transformers `Qwen3Model`, Qwen3-Embedding-0.6B) and its tokenizer.

Captions go through the whole transformer (called without an attention mask, as upstream
does); lyrics use only the token-embedding lookup. Each text is encoded alone, so what we
store holds only that sample's valid tokens — no padding that the decoder would attend to.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from acetune.errors import ModelLoadError
from acetune.model.diffusers_layout import tokenizer_folder

CAPTION_MAX_TOKENS = 256
LYRIC_MAX_TOKENS = 2048
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "added_tokens.json",
                   "special_tokens_map.json")


@dataclass
class TextEncoder:
    tokenizer: object  # a transformers tokenizer
    model: torch.nn.Module  # Qwen3Model
    folder: Path

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    def token_ids(self, text: str, max_tokens: int) -> torch.Tensor:
        ids = self.tokenizer(text, truncation=True, max_length=max_tokens, add_special_tokens=False)["input_ids"]
        return torch.tensor(ids, dtype=torch.long)

    @torch.no_grad()
    def encode_caption(self, prompt: str) -> torch.Tensor:
        """Full caption prompt -> last hidden states [L, hidden] (L <= 256)."""
        ids = self.token_ids(prompt, CAPTION_MAX_TOKENS).to(self.device)
        return self.model(input_ids=ids[None]).last_hidden_state[0].float()

    @torch.no_grad()
    def embed_lyrics(self, lyric_text: str) -> torch.Tensor:
        """Lyric text (with its language header) -> token embeddings [L, hidden] (L <= 2048)."""
        ids = self.token_ids(lyric_text, LYRIC_MAX_TOKENS).to(self.device)
        return self.model.get_input_embeddings()(ids).float()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def load_text_encoder(folder: Path, *, dtype: torch.dtype = torch.float32,
                      device: str | torch.device = "cpu") -> TextEncoder:
    """Tokenizer + bare Qwen3Model from a local folder; never runs code from the folder.

    The tokenizer sits in the same folder (official layout) or, for a diffusers pipeline's
    `text_encoder/`, in the pipeline's `tokenizer/` beside it.
    """
    from transformers import AutoTokenizer, Qwen3Model

    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelLoadError("the text-encoder folder has no config.json", path=folder,
                             fix="point --checkpoint-dir at the ACE-Step checkpoints folder that holds "
                                 "Qwen3-Embedding-0.6B/")
    try:
        model_type = json.loads(config_path.read_text(encoding="utf-8")).get("model_type")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as err:
        raise ModelLoadError(f"config.json is not valid JSON ({err})", path=config_path) from err
    if model_type != "qwen3":
        raise ModelLoadError(f"model_type is {model_type!r}; the ACE-Step text encoder is a 'qwen3' model",
                             path=config_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder(folder), trust_remote_code=False)
        model = Qwen3Model.from_pretrained(folder)  # dtype keyword differs across transformers 4.x / 5.x
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise ModelLoadError(f"cannot load the text encoder ({type(err).__name__}: {str(err).splitlines()[0]})",
                             path=folder, fix="download the Qwen3-Embedding-0.6B folder again") from err
    return TextEncoder(tokenizer, model.to(device=device, dtype=dtype).eval().requires_grad_(False), folder)


def tokenizer_hash(folder: Path) -> str:
    """sha256 over the tokenizer files present: a tokenizer change invalidates a cache.

    `folder` is the text encoder's; the same tokenizer files give the same hash in either layout.
    """
    digest = hashlib.sha256()
    for name in TOKENIZER_FILES:
        path = tokenizer_folder(Path(folder)) / name
        if path.is_file():
            digest.update(name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()
