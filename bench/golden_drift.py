"""How far acetune's fp32 outputs lie from the official goldens, per quantity, on this CPU's kernel path.

The golden tests' tolerances are set from these numbers (see tests/model/tolerances.py). Run it
under other math-kernel paths to see the float noise a test must absorb:

    python3 bench/golden_drift.py
    MKL_CBWR=AVX2 python3 bench/golden_drift.py
    MKL_CBWR=COMPATIBLE python3 bench/golden_drift.py

`--bug eps` runs the same comparison with RMSNorm eps 1e-5 instead of 1e-6 (a real, small bug), to
show how far above the noise such a bug lies.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from acetune.model import AceStepModel, Condition, ModelConfig
from acetune.model.sampling import SamplerSettings, sample

GOLDEN = Path(__file__).parents[1] / "tests" / "fixtures" / "golden"
CONDITION_INPUTS = ("text_hidden_states", "text_attention_mask", "lyric_hidden_states", "lyric_attention_mask",
                    "refer_audio_acoustic_hidden_states_packed", "refer_audio_order_mask", "src_latents",
                    "chunk_masks", "is_covers", "silence_latent", "attention_mask")


def _model(weights: dict, config: ModelConfig) -> AceStepModel:
    model = AceStepModel(config)
    model.load_state_dict({k[2:]: v for k, v in weights.items() if k.startswith("w.")}, strict=True)
    return model.eval()


def _diff(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """max |a - b| and the RMS of the difference (a bug moves every element; noise moves a few)."""
    delta = a.double() - b.double()
    return delta.abs().max().item(), delta.pow(2).mean().sqrt().item()


def _settings(run: dict) -> SamplerSettings:
    kw = run["kwargs"]
    if run["variant"] == "turbo":
        return SamplerSettings(kind="turbo", shift=kw["shift"], method=kw["infer_method"])
    return SamplerSettings(kind=run["variant"], steps=kw["infer_steps"], shift=kw["shift"],
                           guidance=kw["diffusion_guidance_sale"], guidance_method="adg" if kw["use_adg"] else "apg",
                           cfg_interval=(kw["cfg_interval_start"], kw["cfg_interval_end"]), method=kw["infer_method"])


def single_forwards(model: AceStepModel, golden: dict) -> dict[str, tuple[float, float]]:
    i = {k[3:]: v for k, v in golden.items() if k.startswith("in.")}
    with torch.no_grad():
        decoder = model.decoder(i["hidden_states"], i["timestep"], i["timestep_r"], i["encoder_hidden_states"],
                                i["context_latents"], i["attention_mask"], i["encoder_attention_mask"])
        cond = model.prepare_condition(**{k: i[k] for k in CONDITION_INPUTS})
    return {"decoder": _diff(decoder, golden["out.decoder"]),
            "prepare_condition.states": _diff(cond.encoder_hidden_states,
                                              golden["out.prepare_condition.encoder_hidden_states"]),
            "prepare_condition.context": _diff(cond.context_latents, golden["out.prepare_condition.context_latents"])}


def sampler_runs(model: AceStepModel, s: dict, runs: dict) -> dict[str, tuple[float, float]]:
    condition = Condition(s["cond.encoder_hidden_states"], s["cond.encoder_attention_mask"].bool(),
                          s["cond.context_latents"])
    out = {}
    for name, run in sorted(runs.items()):
        with torch.no_grad():
            result = sample(model, s[f"{name}.noise"], condition, _settings(run))
        out[f"sampler.{name}"] = _diff(result, s[f"{name}.out"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bug", choices=["none", "eps"], default="none")
    args = parser.parse_args()
    with safe_open(str(GOLDEN / "sampler_tiny_seed0.safetensors"), "pt") as handle:
        meta = handle.metadata()
    config = ModelConfig.from_dict(json.loads(meta["config_json"]))
    if args.bug == "eps":
        config = ModelConfig.from_dict({**json.loads(meta["config_json"]), "rms_norm_eps": 1e-5})
    golden = load_file(str(GOLDEN / "model_tiny_seed0.safetensors"))
    sampler = load_file(str(GOLDEN / "sampler_tiny_seed0.safetensors"))
    model = _model(golden, config)
    rows = {**single_forwards(model, golden), **sampler_runs(model, sampler, json.loads(meta["runs_json"]))}
    path = os.environ.get("MKL_CBWR", "default")
    print(f"kernel path MKL_CBWR={path}, bug={args.bug}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'quantity':40s} {'max |d|':>9s} {'rms d':>9s}")
    for name, (largest, rms) in rows.items():
        print(f"{name:40s} {largest:9.2e} {rms:9.2e}")


if __name__ == "__main__":
    main()
