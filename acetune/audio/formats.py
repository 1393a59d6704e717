"""Audio facts shared by every audio module: accepted file types and the model's sample rate."""

from __future__ import annotations

# File types a dataset folder may hold (case-insensitive suffixes).
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aac", ".opus")
# ACE-Step's VAE works on 48 kHz stereo; one latent frame is 1920 samples (25 frames/s).
TARGET_SAMPLE_RATE = 48_000
SAMPLES_PER_LATENT_FRAME = 1920
LATENT_FRAMES_PER_SECOND = TARGET_SAMPLE_RATE // SAMPLES_PER_LATENT_FRAME
