"""The memory estimate follows the implementation: counts, activations, checkpointing, CLI."""

from __future__ import annotations

import torch

from acetune.adapters import attach
from acetune.cli.app import main
from acetune.config import AdapterConfig, DataConfig, LoopConfig, OptimConfig, RunConfig
from acetune.model import AttentionOptions, build_model, named_config
from acetune.train.memory import estimate_memory, saved_activation_bytes
from acetune.train.objective import DEFAULT_CFG_RATIO, draw, velocity_loss

FRAMES = 256


def run_config(frames: int = FRAMES, grad_accum: int = 4, **loop) -> RunConfig:
    return RunConfig(data=DataConfig(crop_frames=frames), adapter=AdapterConfig(rank=8, alpha=16.0, dropout=0.0),
                     loop=LoopConfig(**loop), optim=OptimConfig(grad_accum=grad_accum))


def estimate(**kwargs):
    return estimate_memory(run_config(**kwargs), named_config("small"), dtype=torch.float32)


def meta_decoder(ratio: float):
    config = named_config("small")
    decoder = build_model(config, AttentionOptions(honor_padding=False), meta=True).decoder
    attach(decoder, run_config().adapter, seed=0)
    decoder.set_gradient_checkpointing(ratio)
    return decoder


def test_counts_and_shapes():
    plain = estimate()
    assert plain.trainable_parameters == 8 * (512 + 512 + 512 + 256 + 512 + 256 + 512 + 512) * 2 * 8
    assert plain.gradients == plain.trainable_parameters * 4
    assert plain.optimizer == plain.trainable_parameters * 8
    longer = estimate(frames=2 * FRAMES)
    assert 1.7 < longer.activations / plain.activations < 2.6  # roughly linear in length at this size


def test_checkpointing_cuts_activations():
    assert estimate(gradient_checkpointing=1.0).activations < 0.5 * estimate().activations


def test_checkpointing_counts_the_recomputed_layer():
    """With every layer checkpointed the peak holds the saved layer inputs *and* one layer recomputed.

    A layer's own saved activations are what checkpointing all layers removes, divided by the
    layers; its gradient temporaries come on top, so the estimate must exceed the sum.
    """
    config = named_config("small")
    shapes = dict(batch=1, frames=FRAMES, condition=300, dtype=torch.float32)
    kept = saved_activation_bytes(meta_decoder(1.0), config, **shapes)
    everything = saved_activation_bytes(meta_decoder(0.0), config, **shapes)
    one_layer = (everything - kept) / config.num_hidden_layers
    assert one_layer > 0
    assert estimate(gradient_checkpointing=1.0, grad_accum=1).activations >= kept + one_layer


def test_gradient_accumulation_keeps_every_gradient_live():
    once, accumulating = estimate(grad_accum=1), estimate(grad_accum=4)
    assert accumulating.total > once.total
    assert accumulating.total - once.total <= accumulating.gradients


def _measured_step_peak(ratio: float, recompute_mlp: bool = False) -> int:
    """Peak bytes of live tensors (CPU allocator records) during one real forward + backward."""
    config = named_config("small")
    decoder = build_model(config, AttentionOptions(honor_padding=False), meta=True).decoder.to_empty(device="cpu")
    with torch.no_grad():
        for param in decoder.parameters():
            param.normal_(0.0, 0.02)
    attach(decoder, run_config().adapter, seed=0)
    decoder.set_gradient_checkpointing(ratio)
    decoder.set_mlp_recompute(recompute_mlp)
    channels, generator = config.audio_acoustic_hidden_dim, torch.Generator().manual_seed(0)
    null = torch.zeros(1, 1, config.condition_hidden_size)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        x0 = torch.randn(1, FRAMES, channels)
        draws = draw(1, x0.shape, generator)
        out = velocity_loss(decoder, null, x0, torch.ones(1, FRAMES), torch.randn(1, 300, config.condition_hidden_size),
                            torch.ones(1, 300), torch.randn(1, FRAMES, 2 * channels), draws, t=torch.rand(1),
                            cfg_ratio=DEFAULT_CFG_RATIO)
        out.loss.backward()
    events = prof.profiler.kineto_results.events()
    records = sorted((e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in records:
        live += nbytes
        peak = max(peak, live)
    return peak


def test_matches_a_measured_cpu_step():
    for ratio, recompute in ((0.0, False), (1.0, False), (0.0, True)):
        predicted = estimate(gradient_checkpointing=ratio, recompute_mlp=recompute, grad_accum=1)
        measured = _measured_step_peak(ratio, recompute)
        assert abs(predicted.gradients + predicted.activations - measured) < 0.1 * measured, (ratio, measured)


def test_cli_reports_fit(capsys):
    assert main(["estimate-memory", "--architecture", "small", "--set", "data.crop_frames=256",
                 "--memory-gib", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "does not fit" in out and "--set loop.recompute_mlp=true" in out
    assert main(["estimate-memory", "--architecture", "small", "--set", "data.crop_frames=256",
                 "--set", "loop.recompute_mlp=true", "--memory-gib", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "MLP recomputed" in out and "--set loop.recompute_mlp=true" not in out  # already on: not suggested


def test_cli_preset_auto_is_chosen_for_the_memory_given(capsys):
    """The README's line `estimate-memory --preset auto --memory-gib 16` picks the 16 GB preset."""
    assert main(["estimate-memory", "--architecture", "small", "--preset", "auto", "--memory-gib", "16"]) == 0
    out = capsys.readouterr().out
    assert "preset auto -> vram_16gb (16 GiB of device memory)" in out and "fits" in out


def test_a_run_that_trains_cover_counts_the_tokenizer_and_detokenizer_it_loads():
    from acetune.config import ObjectiveConfig, Task, TaskMix

    config = named_config("small")
    parts = build_model(config, meta=True)
    frozen = sum(p.numel() for name in ("tokenizer", "detokenizer") for p in getattr(parts, name).parameters())
    assert frozen > 0

    def weights(objective: ObjectiveConfig) -> int:
        run = RunConfig(data=DataConfig(crop_frames=32), adapter=AdapterConfig(rank=8, alpha=16.0, dropout=0.0),
                        objective=objective)
        return estimate_memory(run, config, dtype=torch.bfloat16).weights

    plain = weights(ObjectiveConfig())
    assert weights(ObjectiveConfig(task=Task.COVER)) - plain == frozen * 2  # bf16, as the session loads them
    assert weights(ObjectiveConfig(task=Task.MIXED)) - plain == frozen * 2  # the default mix includes cover
    assert weights(ObjectiveConfig(task=Task.MIXED, task_mix=TaskMix(cover=0.0))) == plain
    assert weights(ObjectiveConfig(task=Task.REPAINT)) == plain
