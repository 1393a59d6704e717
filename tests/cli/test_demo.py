"""`acetune demo` end to end on the embedded default (tiny checkpoints, synthesized songs)."""

from __future__ import annotations

import json

from acetune.cli.app import main
from acetune.data.cache import CacheReader


def test_demo_runs_end_to_end_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "valid, fingerprint matches" in printed
    reader = CacheReader(out / "cache")
    assert len(reader) == 6
    pop = reader.entries[reader.index_of("sunrise_pop.wav")].metadata
    assert pop["caption"].startswith("acetune-demo, bright synth pop")
    assert "- bpm: 120\n" in pop["prompt"] and "- keyscale: C major\n" in pop["prompt"]  # found by analyze
    sidecar = json.loads((out / "songs" / "rainy_ballad.json").read_text())
    assert sidecar["keyscale"] == "A minor" and sidecar["caption"] == "slow melancholic piano ballad"
    assert (out / "run" / "final" / "adapter_model.safetensors").is_file()
    line = next(l for l in printed.splitlines() if l.startswith("5. trained a LoRA"))
    before, after = (float(v) for v in line.split("eval loss ")[1].split(";")[0].split(" -> "))
    assert after < before
    assert main(["demo", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
