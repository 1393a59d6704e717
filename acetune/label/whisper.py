"""The Whisper labeller: the words actually sung, through transformers' speech-recognition pipeline.

The song is read as 16 kHz mono and transcribed with segment timestamps (`return_timestamps=True`; songs
over 30 s use Whisper's sequential long-form decoding). The language is detected (`return_language=True`)
unless given. Each timestamped segment becomes one lyric line, and a pause of `STANZA_PAUSE_S` or more
between segments starts a new paragraph. A song with (almost) no words is instrumental: lyrics
`[Instrumental]`, `is_instrumental: true` (ACE-Step's convention, spec model.md §7.2). With a
`VocalIsolator` (`--isolate-vocals`, see `vocals`), only the song's vocals stem is transcribed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from acetune.audio import load_audio, resample
from acetune.errors import LabelError, ModelLoadError
from acetune.label.base import Proposal
from acetune.label.fields import INSTRUMENTAL_LYRICS, check_values

if TYPE_CHECKING:
    from acetune.label.vocals import VocalIsolator

WHISPER_RATE = 16_000
STANZA_PAUSE_S = 2.0  # a gap this long between sung phrases reads as a new verse or chorus
MIN_LETTERS = 4  # fewer letters than this (after dropping [music]-style notes) is no singing
WHISPER_PREFIX = "whisper"
_NOTES = re.compile(r"\[[^\]]*\]|\([^)]*\)|[♪♫♬♩]")


class WhisperLabeller:
    kind = "whisper"
    fields = ("lyrics", "language", "is_instrumental")

    def __init__(self, model: str, *, device: torch.device, dtype: torch.dtype, language: str | None = None,
                 isolator: VocalIsolator | None = None):
        from transformers import pipeline

        try:
            self.asr = pipeline("automatic-speech-recognition", model=model, device=device, dtype=dtype)
        except (OSError, ValueError, KeyError) as err:
            raise ModelLoadError(f"cannot load Whisper ({type(err).__name__}: {str(err).splitlines()[0]})",
                                 path=model, fix="pass --whisper a Whisper folder or Hub id, e.g. "
                                                 "openai/whisper-large-v3-turbo") from err
        name = Path(model).name if Path(model).exists() else model
        self.source = f"whisper:{name}"
        self.language = language
        self.isolator = isolator
        self.settings = {"model": name, "language": language, "pause_s": STANZA_PAUSE_S,
                         **({"separator": isolator.name} if isolator else {})}  # no new key: old runs stay done
        self.detail = (f"{name} on {device}" + (f", language {language}" if language else ", language detected")
                       + (f", vocals isolated with {isolator.name}" if isolator else ""))

    def propose(self, audio_path: Path) -> Proposal:
        mono = self.heard(audio_path)
        options: dict[str, Any] = {"task": "transcribe"}
        if self.language:
            options["language"] = self.language
        try:
            out = self.asr({"raw": mono, "sampling_rate": WHISPER_RATE}, return_timestamps=True,
                           return_language=self.language is None, generate_kwargs=options)
        except (RuntimeError, ValueError) as err:
            raise LabelError(f"Whisper failed: {str(err).splitlines()[0]}", path=audio_path,
                             fix="try --device cpu, or another --whisper model") from err
        chunks = out.get("chunks") or [{"timestamp": (0.0, None), "text": out.get("text", "")}]
        checked = check_values(transcript_values(chunks, self.language))
        return Proposal(checked.values, checked.dropped)

    def heard(self, audio_path: Path) -> np.ndarray:
        """What Whisper transcribes: the song, or its vocals stem, as 16 kHz mono."""
        if self.isolator is None:
            return load_audio(audio_path, sample_rate=WHISPER_RATE, max_duration_s=None).waveform.mean(axis=0)
        rate = self.isolator.samplerate
        song = load_audio(audio_path, sample_rate=rate, max_duration_s=None)
        try:
            vocals = self.isolator.vocals(song.waveform)
        except RuntimeError as err:
            raise LabelError(f"vocal isolation failed: {str(err).splitlines()[0]}", path=audio_path,
                             fix="try --device cpu, or leave --isolate-vocals out") from err
        return resample(vocals, rate, WHISPER_RATE).mean(axis=0)


def transcript_values(chunks: Sequence[dict[str, Any]], language: str | None) -> dict[str, object]:
    """Pipeline chunks -> lyrics (a line per segment, a blank line at long pauses), language, instrumental."""
    lyrics = lyric_lines(chunks)
    if sum(ch.isalpha() for ch in _NOTES.sub("", lyrics)) < MIN_LETTERS:
        return {"lyrics": INSTRUMENTAL_LYRICS, "is_instrumental": True}
    spoken = Counter(c["language"] for c in chunks if c.get("language"))
    found = language or (spoken.most_common(1)[0][0] if spoken else None)
    return {"lyrics": lyrics, "is_instrumental": False, **({"language": found} if found else {})}


def lyric_lines(chunks: Sequence[dict[str, Any]]) -> str:
    lines: list[str] = []
    last_end: float | None = None
    for chunk in chunks:
        text = " ".join(str(chunk.get("text", "")).split())
        start, end = chunk.get("timestamp") or (None, None)
        if not text:
            continue
        if lines and last_end is not None and start is not None and start - last_end >= STANZA_PAUSE_S:
            lines.append("")
        lines.append(text)
        last_end = end if end is not None else last_end
    return "\n".join(lines)


def find_whisper(checkpoint_dir: Path, model: str | None) -> str:
    """`--whisper` as given (a folder or Hub id), else the one `whisper*/` folder in the checkpoints folder."""
    if model:
        return model
    if not Path(checkpoint_dir).is_dir():
        raise ModelLoadError("checkpoint folder not found", path=checkpoint_dir,
                             fix="pass --whisper with a folder or a Hub id, or a --checkpoint-dir holding whisper*/")
    found = sorted(p for p in Path(checkpoint_dir).iterdir()
                   if p.is_dir() and p.name.lower().startswith(WHISPER_PREFIX) and (p / "config.json").is_file())
    if len(found) != 1:
        what = "no whisper*/ folder" if not found else f"{len(found)} whisper folders ({', '.join(p.name for p in found)})"
        raise ModelLoadError(f"which Whisper? {what} here", path=checkpoint_dir,
                             fix="pass --whisper with a folder or a Hub id, e.g. --whisper openai/whisper-large-v3-turbo")
    return str(found[0])


def open_whisper(checkpoint_dir: Path, model: str | None, device: torch.device,
                 language: str | None = None, isolator: VocalIsolator | None = None) -> WhisperLabeller:
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    return WhisperLabeller(find_whisper(checkpoint_dir, model), device=device, dtype=dtype, language=language,
                           isolator=isolator)
