"""Audio in, arrays out: decode, resample, loudness, split, analysis, synthesis. No model code.

Waveforms are numpy float32 arrays shaped [channels, samples]. librosa (for `analyze_audio`) is an
optional extra and is imported only when analysis runs.
"""

from acetune.audio.analysis import AudioAnalysis, analyze_audio, estimate_key
from acetune.audio.decode import AudioInfo, decode_audio, probe_audio
from acetune.audio.files import file_problem, open_regular_file
from acetune.audio.formats import AUDIO_EXTENSIONS, LATENT_FRAMES_PER_SECOND, SAMPLES_PER_LATENT_FRAME, TARGET_SAMPLE_RATE
from acetune.audio.prepare import (
    Normalization,
    NormalizeResult,
    PreparedAudio,
    is_silent,
    load_audio,
    normalize,
    resample,
    to_stereo,
    truncate,
)
from acetune.audio.split import split_waveform
from acetune.audio.synth import noise, sine, synthesize_song
from acetune.audio.write import write_audio

__all__ = [
    "AUDIO_EXTENSIONS",
    "LATENT_FRAMES_PER_SECOND",
    "SAMPLES_PER_LATENT_FRAME",
    "TARGET_SAMPLE_RATE",
    "AudioAnalysis",
    "AudioInfo",
    "Normalization",
    "NormalizeResult",
    "PreparedAudio",
    "analyze_audio",
    "decode_audio",
    "estimate_key",
    "file_problem",
    "is_silent",
    "load_audio",
    "noise",
    "normalize",
    "open_regular_file",
    "probe_audio",
    "resample",
    "sine",
    "split_waveform",
    "synthesize_song",
    "to_stereo",
    "truncate",
    "write_audio",
]
