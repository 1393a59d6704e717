"""Peak memory of `load_audio` (decode + stereo + resample + keep the start) against file length.

Run:  python bench/decode_memory.py                              (1, 30, 60 min; wav 44.1 kHz + m4a; 240 s kept)
      python bench/decode_memory.py --minutes 1 60 --formats flac --max-duration 120

Each file is a synthetic stereo tone + noise at 44.1 kHz, so loading it also resamples to 48 kHz
(the costlier path). Each measurement runs `load_audio` in a fresh Python process and reads that
process's peak resident set size from the kernel (`os.wait4`), so measurements do not share memory.
`baseline` is the same process importing acetune.audio without loading a file. With a streamed
decode the peak should not grow with the file's length: only `--max-duration` seconds are kept.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
RATE = 44_100
_CHILD = """
import sys, time
from acetune.audio import load_audio
start = time.perf_counter()
if sys.argv[1] != "-":
    audio = load_audio(sys.argv[1], max_duration_s=float(sys.argv[2]))
    print(audio.waveform.shape[1], round(time.perf_counter() - start, 2))
else:
    print(0, 0.0)
"""


def write_wav(path: Path, minutes: float) -> Path:
    """A long 16-bit stereo WAV written block by block, so making it needs little memory itself."""
    rng = np.random.default_rng(0)
    block = RATE * 10
    with sf.SoundFile(str(path), "w", RATE, 2, subtype="PCM_16") as handle:
        for start in range(0, int(minutes * 60 * RATE), block):
            t = (start + np.arange(block)) / RATE
            tone = 0.3 * np.sin(2 * np.pi * 220.0 * t)
            handle.write(np.stack([tone, tone], axis=1) + rng.normal(0, 0.05, (block, 2)))
    return path


def make_file(folder: Path, minutes: float, fmt: str) -> Path:
    wav = folder / f"{minutes:g}min.wav"
    if not wav.exists():
        write_wav(wav, minutes)
    if fmt == "wav":
        return wav
    target = folder / f"{minutes:g}min.{fmt}"
    if not target.exists():  # ffmpeg through PyAV would also do; the CLI keeps this script short
        import av

        codec = {"flac": "flac", "m4a": "aac", "mp3": "libmp3lame"}[fmt]
        with av.open(str(wav)) as src, av.open(str(target), "w") as dst:
            out = dst.add_stream(codec, rate=RATE, layout="stereo")
            for frame in src.decode(audio=0):
                frame.pts = None
                for packet in out.encode(frame):
                    dst.mux(packet)
            for packet in out.encode(None):
                dst.mux(packet)
    return target


def peak_rss_mib(path: Path | None, max_duration_s: float) -> tuple[float, str]:
    """(peak RSS of a fresh process that loads `path`, its stdout)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-c", _CHILD, str(path) if path else "-", str(max_duration_s)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, env=env, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read().strip() if proc.stdout else ""
    if status != 0:
        raise SystemExit(f"child failed for {path}: status {status}")
    return usage.ru_maxrss / 1024.0, out  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 30.0, 60.0])
    parser.add_argument("--formats", nargs="+", default=["wav", "m4a"], choices=["wav", "flac", "m4a", "mp3"])
    parser.add_argument("--max-duration", type=float, default=240.0)
    parser.add_argument("--folder", type=Path, default=None, help="keep the synthetic files here (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        base, _ = peak_rss_mib(None, args.max_duration)
        print(f"baseline (import only): {base:.0f} MiB peak RSS")
        print("| file | size | kept samples @ 48 kHz | load time | peak RSS | above baseline |")
        print("|---|---|---|---|---|---|")
        for fmt in args.formats:
            for minutes in args.minutes:
                made = time.perf_counter()
                path = make_file(folder, minutes, fmt)
                made = time.perf_counter() - made
                peak, out = peak_rss_mib(path, args.max_duration)
                kept, seconds = out.split()
                print(f"| {minutes:g} min {fmt} | {path.stat().st_size / 2**20:.0f} MiB | {kept} | {seconds} s "
                      f"| {peak:.0f} MiB | {peak - base:+.0f} MiB |", flush=True)


if __name__ == "__main__":
    main()
