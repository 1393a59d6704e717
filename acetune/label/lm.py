"""The 5 Hz LM "understand" labeller: a song's audio codes in, caption, genre, lyrics and metadata out.

Loads `acestep-5Hz-lm-*/` with transformers (`Qwen3ForCausalLM` + the folder's tokenizer and chat template,
no remote code). Decoding follows upstream's `understand_audio_from_codes` defaults (temperature 0.3, no
top-k / top-p, repetition penalty 1.0); upstream also constrains the metadata with a finite-state decoder,
which we do not: instead the answer is checked (`fields.check_values`) and bad values are dropped.
Audio-code tokens are suppressed while the LM answers (the answer is text). See docs/labels.md (the 5 Hz LM facts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from acetune.errors import LabelError, ModelLoadError
from acetune.label.base import Proposal
from acetune.label.codes import AudioCoder
from acetune.label.fields import INSTRUMENTAL_LYRICS, check_values
from acetune.label.lm_folders import LmChoice
from acetune.label.lm_format import CODE_TOKEN, END_OF_TURN, parse_answer, understand_messages

LM_FIELDS = ("caption", "genre", "lyrics", "bpm", "keyscale", "timesignature", "language", "is_instrumental")


@dataclass(frozen=True)
class LmSettings:
    temperature: float = 0.3  # upstream understand_audio_from_codes default
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float = 1.0
    max_new_tokens: int = 2048  # metadata + the lyrics of a long song
    seed: int = 0


class LmLabeller:
    kind = "lm"
    fields = LM_FIELDS

    def __init__(self, choice: LmChoice, coder: AudioCoder, *, dtype: torch.dtype, settings: LmSettings = LmSettings(),
                 logits_processors: Sequence[Any] = ()):
        """`logits_processors` are passed to `generate` (constrained decoding, or a script in tests)."""
        self.choice, self.coder, self.lm_settings = choice, coder, settings
        self.source = f"lm:{choice.name}"
        self.settings = {**asdict(settings), "model": choice.name, "dit": coder.dit_name}
        self.tokenizer, self.model = load_lm(choice.folder, dtype=dtype, device=coder.device)
        self.code_ids = audio_code_ids(self.tokenizer, coder.codebook_size, choice.folder)
        self.logits_processors = list(logits_processors)
        self.suppress_codes = SuppressIds(self.code_ids)
        self.detail = f"{choice.name} on {coder.device} ({describe_choice(choice)})"

    def prompt(self, codes: Sequence[int]) -> str:
        """The exact text the LM reads for these codes."""
        return self.tokenizer.apply_chat_template(understand_messages(codes), tokenize=False,
                                                  add_generation_prompt=True)

    def propose(self, audio_path: Path) -> Proposal:
        answer = self.answer(self.prompt(self.coder.codes(audio_path)), audio_path)
        raw = parse_answer(answer)
        if not raw:
            raise LabelError(f"the LM's answer holds no labels: {answer[:80]!r}", path=audio_path,
                             fix="try again with another --seed, or a larger LM (--lm)")
        values: dict[str, object] = dict(raw)
        if raw.get("lyrics", "").strip().lower() == INSTRUMENTAL_LYRICS.lower():
            values["is_instrumental"] = True  # the LM says so in ACE-Step's own words
        checked = check_values(values)
        return Proposal(checked.values, checked.dropped)

    @torch.no_grad()
    def answer(self, prompt: str, audio_path: Path) -> str:
        ids = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids.to(self.coder.device)
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit is not None and ids.shape[1] + self.lm_settings.max_new_tokens > limit:
            raise LabelError(f"the song is too long for the LM: {ids.shape[1]} prompt tokens + "
                             f"{self.lm_settings.max_new_tokens} to write > {limit}", path=audio_path,
                             fix="split the song with `acetune dataset split` and label the pieces")
        s = self.lm_settings
        from transformers import LogitsProcessorList

        torch.manual_seed(s.seed)  # sampling draws from the global generator; one seed per song keeps reruns equal
        try:
            out = self.model.generate(
                ids, attention_mask=torch.ones_like(ids), do_sample=s.temperature > 0,
                temperature=s.temperature if s.temperature > 0 else None, top_k=s.top_k, top_p=s.top_p,
                repetition_penalty=s.repetition_penalty, max_new_tokens=s.max_new_tokens,
                eos_token_id=self.tokenizer.convert_tokens_to_ids(END_OF_TURN), pad_token_id=self.tokenizer.pad_token_id,
                logits_processor=LogitsProcessorList([*self.logits_processors, self.suppress_codes]))
        except (RuntimeError, ValueError) as err:
            raise LabelError(f"the LM failed: {str(err).splitlines()[0]}", path=audio_path,
                             fix="try --device cpu, or a smaller LM (--lm)") from err
        return self.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=False)


class SuppressIds:
    """A logits processor that forbids a set of token ids (the audio codes: the answer is text)."""

    def __init__(self, ids: Sequence[int]):
        self.ids = torch.tensor(sorted(ids), dtype=torch.long)
        first, last = int(self.ids[0]), int(self.ids[-1])
        self.span = (first, last + 1) if last - first + 1 == len(self.ids) else None  # contiguous: one slice

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        scores = scores.clone()
        if self.span is not None:
            scores[:, self.span[0]:self.span[1]] = -torch.inf
        else:
            scores[:, self.ids.to(scores.device)] = -torch.inf
        return scores


def load_lm(folder: Path, *, dtype: torch.dtype, device: torch.device):
    """(tokenizer, Qwen3ForCausalLM) from an LM folder; a folder that is not one is a `ModelLoadError`."""
    from transformers import AutoConfig, AutoTokenizer, Qwen3ForCausalLM

    try:
        config = AutoConfig.from_pretrained(folder)
        if config.model_type != "qwen3":
            raise ModelLoadError(f"the LM's config.json says model_type {config.model_type!r}, not qwen3",
                                 path=folder / "config.json", fix="download the acestep-5Hz-lm folder again")
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = Qwen3ForCausalLM.from_pretrained(folder, dtype=dtype)
    except (OSError, ValueError, KeyError) as err:
        raise ModelLoadError(f"cannot load the LM ({type(err).__name__}: {str(err).splitlines()[0]})", path=folder,
                             fix="download the acestep-5Hz-lm folder again (config, safetensors, tokenizer files)") from err
    if not tokenizer.chat_template:
        raise ModelLoadError("the LM's tokenizer has no chat template", path=folder,
                             fix="download the acestep-5Hz-lm folder again (tokenizer_config.json / chat_template.jinja)")
    return tokenizer, model.to(device).eval()


def audio_code_ids(tokenizer, codebook_size: int, folder: Path) -> list[int]:
    """Token ids of `<|audio_code_0|>` .. `<|audio_code_{N-1}|>`; a tokenizer without them cannot read codes."""
    unknown = tokenizer.unk_token_id
    ids = tokenizer.convert_tokens_to_ids([CODE_TOKEN.format(i) for i in range(codebook_size)])
    missing = [i for i, token_id in enumerate(ids) if token_id is None or token_id == unknown]
    if missing:
        raise ModelLoadError(f"the LM's tokenizer lacks {len(missing)} of the {codebook_size} audio-code tokens "
                             f"(first: {CODE_TOKEN.format(missing[0])})", path=folder,
                             fix="use an acestep-5Hz-lm folder made for this ACE-Step model")
    return ids


def describe_choice(choice: LmChoice) -> str:
    """"the largest that fits: needs about 4.4 GB, 61.0 GB free"."""
    free = "free memory unknown" if choice.free_bytes is None else f"{choice.free_bytes / 1e9:.1f} GB free"
    return f"{choice.reason}: needs about {choice.need_bytes / 1e9:.2f} GB, {free}"
