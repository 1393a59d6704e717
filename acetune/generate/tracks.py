"""`Track`: what one rendered song is asked to be (caption, lyrics, metas, length).

The prompt text comes from `acetune.data.prompts`, the same functions preprocessing uses, so a
caption means at generation time exactly what it meant in training.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from acetune.audio import SAMPLES_PER_LATENT_FRAME, TARGET_SAMPLE_RATE
from acetune.data.captions import apply_tag
from acetune.config import Task
from acetune.data.prompts import TASK_INSTRUCTIONS, build_caption_prompt, build_lyric_text, build_metas
from acetune.errors import ConfigError

MIN_FRAMES = 128  # the app pads every generation to at least 128 latent frames (5.12 s), then trims
MAX_DURATION_S = 600.0


@dataclass(frozen=True)
class Track:
    caption: str
    lyrics: str = ""
    language: str = "en"
    bpm: int | None = None
    keyscale: str | None = None
    timesignature: str | None = None
    duration_s: float = 30.0
    task: Task = Task.TEXT2MUSIC  # its instruction heads the caption prompt (repaint and cover need a Source)

    def __post_init__(self) -> None:
        if not self.caption.strip():
            raise ConfigError("the caption is empty", fix='describe the music, e.g. --caption "warm lo-fi piano"')
        if not 1.0 <= self.duration_s <= MAX_DURATION_S:
            raise ConfigError(f"duration {self.duration_s} s is outside [1, {MAX_DURATION_S:.0f}] seconds",
                              fix="use e.g. --duration 30")
        if self.bpm is not None and not 20 <= self.bpm <= 400:
            raise ConfigError(f"bpm {self.bpm} is outside [20, 400]", fix="use e.g. --bpm 120, or leave it out")

    @property
    def prompt(self) -> str:
        metas = build_metas(self.bpm, self.timesignature, self.keyscale, self.duration_s)
        return build_caption_prompt(self.caption, metas, TASK_INSTRUCTIONS[self.task.value])

    @property
    def lyric_text(self) -> str:
        return build_lyric_text(self.lyrics, self.language)

    @property
    def frames(self) -> int:
        """Latent frames of the requested length (duration rounded to 0.1 s, as the app does)."""
        samples = round(self.duration_s * 10) * TARGET_SAMPLE_RATE // 10
        return max(1, samples // SAMPLES_PER_LATENT_FRAME)

    @property
    def render_frames(self) -> int:
        return max(self.frames, MIN_FRAMES)

    @property
    def samples(self) -> int:
        return self.frames * SAMPLES_PER_LATENT_FRAME

    def with_trigger(self, trigger: str, position: str = "prepend") -> Track:
        """The caption with an adapter's activation tag, placed as in training (unless already present).

        A tag trained with position "replace" (captions were the tag alone) is prepended: the
        user's own caption still says what to make.
        """
        if not trigger or trigger.lower() in self.caption.lower():
            return self
        return replace(self, caption=apply_tag(self.caption, trigger, "append" if position == "append" else "prepend"))
