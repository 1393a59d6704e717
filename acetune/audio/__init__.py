"""Audio in, arrays out: decode, resample, loudness, split, analysis, synthesis. No model code."""

from acetune.audio.formats import AUDIO_EXTENSIONS, LATENT_FRAMES_PER_SECOND, SAMPLES_PER_LATENT_FRAME, TARGET_SAMPLE_RATE

__all__ = ["AUDIO_EXTENSIONS", "LATENT_FRAMES_PER_SECOND", "SAMPLES_PER_LATENT_FRAME", "TARGET_SAMPLE_RATE"]
