"""`acetune demo` end to end on the embedded default (tiny checkpoints, synthesized songs)."""

from __future__ import annotations

import json

import soundfile as sf
from safetensors import safe_open

from acetune.cli.app import main
from acetune.data.cache import CacheReader
from acetune.model.checkpoint import load_model


def test_demo_runs_end_to_end_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "valid, fingerprint matches" in printed
    assert "auto-labelled city_funk.wav with the tiny 5 Hz LM (acestep-5Hz-lm-tiny on" in printed
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
    index = [json.loads(line) for line in (out / "run" / "auditions" / "index.jsonl").read_text().splitlines()]
    assert {row["strength"] for row in index} == {None, 0.5, 1.0} and {row["step"] for row in index} >= {0}
    assert all((out / "run" / "auditions" / row["file"]).is_file() for row in index)
    assert "acetune-demo" in index[0]["prompt"]  # the trigger word went into the audition prompt
    with safe_open(str(out / "run" / "final" / "adapter_model.safetensors"), "pt") as handle:
        assert handle.metadata()["trigger_word"] == "acetune-demo"  # from the cache's activation tag
    base, tuned = (sf.read(str(out / "ab" / f"{name}_seed42.wav"))[0] for name in ("base", "adapter"))
    assert base.shape == tuned.shape == (4 * 48000, 2) and abs(base - tuned).max() > 1e-4
    merged = load_model(out / "merged")  # strict: the official layout, every key
    assert merged.silence_latent is not None and (out / "merged" / "model.safetensors").is_file()
    with safe_open(str(out / "export" / "acetune-demo_comfyui.safetensors"), "pt") as handle:
        keys = set(handle.keys())
    assert "base_model.model.layers.0.self_attn.q_proj.lora_down.weight" in keys
    assert "base_model.model.layers.0.self_attn.q_proj.alpha" in keys
    for label in ("6. ", "7. ", "8. ", "9. "):
        assert any(line.startswith(label) for line in printed.splitlines())
    assert main(["demo", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
