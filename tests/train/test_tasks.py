"""Task adapters: the training inputs of each task, their golden anchor, and a mixed-task run end to end."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from acetune.config import RunConfig, Task, TaskMix, config_from_dict, validate
from acetune.cli.app import main
from acetune.data.cache import CacheReader
from acetune.data.encoding import task_source, text2music_context
from acetune.errors import ConfigError
from acetune.data.prompts import DEFAULT_DIT_INSTRUCTION, TASK_INSTRUCTIONS, with_instruction
from acetune.model.checkpoint import load_silence_latent, read_model_config
from acetune.train.batching import Item, collate
from acetune.train.loop import run
from acetune.train.objective import Objective
from acetune.train.tasks import check_tasks, repaint_span, trained_tasks
from crash_runner import run_killed

MIXED = {"task": "mixed", "task_mix": {"text2music": 1.0, "repaint": 1.0, "cover": 1.0}}


def _batch(train_cache, tiny_bundle, frames: int = 48):
    reader = CacheReader(train_cache)
    dit = tiny_bundle / "acestep-v15-turbo"
    silence = load_silence_latent(dit, read_model_config(dit))
    items = [Item(0, 5, frames), Item(1, 0, frames - 8), Item(2, 17, frames)]
    return collate(reader, items, silence), silence, items


def test_each_task_builds_its_inputs_as_the_official_pipeline_for_a_fixed_seed(train_cache, tiny_bundle):
    batch, silence, items = _batch(train_cache, tiny_bundle)
    objective = Objective(config_from_dict({"objective": MIXED}, source="test").objective)
    inputs = objective.task_inputs(batch, torch.Generator().manual_seed(26))
    # pinned: what seed 26 draws (a change to the documented distributions or their draw order fails here)
    assert inputs.tasks == (Task.REPAINT, Task.TEXT2MUSIC, Task.COVER)
    assert inputs.spans == ((14, 33), (0, 0), (0, 0))
    assert inputs.is_covers.tolist() == [0, 0, 1]
    channels = batch.target_latents.shape[-1]
    for row, (item, task, span) in enumerate(zip(items, inputs.tasks, inputs.spans)):
        real = item.frames
        target, src, mask = batch.target_latents[row], inputs.src_latents[row], inputs.chunk_masks[row]
        silence_here = text2music_context(silence, item.start + real)[item.start:, :channels]  # the text2music source
        inside = torch.zeros(batch.target_latents.shape[1], dtype=torch.bool)
        if task == Task.REPAINT:
            inside[span[0]:span[1]] = True
        kept = ~inside
        kept[real:] = False
        if task == Task.TEXT2MUSIC:  # no song in the source: the silence latent at the crop's positions
            assert torch.equal(src[:real], silence_here)
        else:  # the song where it is kept (a cover: everywhere)
            assert torch.equal(src[kept], target[kept])
        assert torch.equal(src[inside], silence_here[inside[:real]])  # the span to repaint is silence
        assert torch.equal(mask[:real], (inside[:real, None] if task == Task.REPAINT else
                                         torch.ones(real, 1, dtype=torch.bool)).float().expand(real, channels))
        assert not mask[real:].any()  # padded frames are no part of any task


def test_the_instruction_line_of_each_task_is_the_official_one(train_cache):
    prompt = CacheReader(train_cache).entries[0].metadata["prompt"]
    assert prompt.startswith(f"# Instruction\n{DEFAULT_DIT_INSTRUCTION}\n\n# Caption\n")
    assert with_instruction(prompt, TASK_INSTRUCTIONS["repaint"]).startswith(
        "# Instruction\nRepaint the mask area based on the given conditions:\n\n# Caption\n")
    assert with_instruction(prompt, TASK_INSTRUCTIONS["cover"]).startswith(
        "# Instruction\nGenerate audio semantic tokens based on the given conditions:\n\n# Caption\n")
    assert with_instruction(prompt, TASK_INSTRUCTIONS["cover"]).endswith(prompt.split("# Caption\n", 1)[1])


def test_a_text2music_run_draws_nothing_more(train_cache, tiny_bundle):
    batch, _, _ = _batch(train_cache, tiny_bundle)
    generator = torch.Generator().manual_seed(3)
    inputs = Objective(RunConfig().objective).task_inputs(batch, generator)
    assert inputs.tasks == (Task.TEXT2MUSIC,) * 3
    assert torch.equal(generator.get_state(), torch.Generator().manual_seed(3).get_state())


def test_a_cover_sample_gets_the_official_semantic_hints(golden_model, golden_inputs, golden):
    """The cover row of the golden `prepare_condition` (is_covers = 1) rebuilt from the task's own inputs."""
    song = golden_inputs["src_latents"][1]
    src, mask = task_source(song, torch.zeros_like(song), cover=True)
    context = golden_model.context_latents(src[None], mask[None], torch.ones(1, dtype=torch.long),
                                           golden_inputs["silence_latent"], golden_inputs["attention_mask"][1:])
    expected = golden["out.prepare_condition.context_latents"][1]
    assert torch.allclose(context[0], expected, atol=1e-5, rtol=1e-5)


def test_cover_hints_of_a_crop_are_the_whole_songs_hints_there_when_it_starts_on_the_pool_grid(golden_model,
                                                                                               golden_inputs):
    """Training computes cover hints on the crop. The tokenizer and detokenizer work inside 5-frame windows
    only, so on the pool grid those are the official hints of the whole source at the same frames; off the
    grid, the same music pooled with another phase (what the official pipeline gives that crop as a source)."""
    song, silence = golden_inputs["src_latents"][1], golden_inputs["silence_latent"]
    mask_dtype = golden_inputs["attention_mask"].dtype

    def hints(latents: torch.Tensor) -> torch.Tensor:
        src, mask = task_source(latents, torch.zeros_like(latents), cover=True)
        context = golden_model.context_latents(src[None], mask[None], torch.ones(1, dtype=torch.long), silence,
                                               torch.ones(1, latents.shape[0], dtype=mask_dtype))
        return context[0, :, :latents.shape[-1]]

    whole = hints(song)
    window = golden_model.config.pool_window_size
    start, end = window, window * (song.shape[0] // window - 1)
    assert end - start >= 2 * window
    assert torch.allclose(hints(song[start:end]), whole[start:end], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(hints(song[start + 1:end]), whole[start + 1:end], atol=1e-3)


def test_repaint_spans_stay_inside_the_sample():
    assert repaint_span(100, 0.0, 0.0) == (0, 10) and repaint_span(100, 1.0, 1.0) == (50, 100)
    assert repaint_span(1, 0.5, 0.9) == (0, 1)


def test_tasks_a_variant_or_the_data_cannot_do_are_refused_by_name():
    with pytest.raises(ConfigError, match="turbo model does not do extract"):
        check_tasks((Task.TEXT2MUSIC, Task.EXTRACT), "turbo")
    with pytest.raises(ConfigError, match="complete needs stems") as err:
        check_tasks((Task.COMPLETE,), "base")
    assert "task_mix.complete = 0" in err.value.fix
    config = config_from_dict({"objective": {"task": "mixed", "task_mix": {"extract": 2.0}}}, source="t")
    assert trained_tasks(config.objective) == (Task.TEXT2MUSIC, Task.REPAINT, Task.COVER, Task.EXTRACT)
    with pytest.raises(ConfigError, match="objective.task_mix"):
        validate(config_from_dict({"objective": {"task": "mixed", "task_mix": {k: 0 for k in vars(TaskMix())}}},
                                  source="t"))
    with pytest.raises(ConfigError, match="task_mix.repaint"):
        validate(config_from_dict({"objective": {"task_mix": {"repaint": -1}}}, source="t"))
    with pytest.raises(ConfigError, match="audition.source"):
        validate(config_from_dict({"audition": {"tasks": ["cover"]}}, source="t"))


def _mixed_config(train_cache, tiny_bundle, out, **loop):
    return config_from_dict({
        "data": {"cache": str(train_cache), "checkpoint_dir": str(tiny_bundle), "crop_frames": 48},
        "adapter": {"rank": 4}, "optim": {"grad_accum": 1},
        "objective": MIXED,
        "loop": {"epochs": 2, "seed": 5, **loop}, "log": {"tensorboard": False},
        "save": {"output_dir": str(out), "save_every": 2},
    }, source="test")


def test_a_mixed_task_lora_trains_records_its_tasks_and_auditions_repaint_and_cover(train_cache, tiny_bundle,
                                                                                   tmp_path):
    song = next((train_cache.parent / "songs").glob("*.wav"))
    config = _mixed_config(train_cache, tiny_bundle, tmp_path / "run")
    config = replace(config, audition=replace(config.audition, every_epochs=2, prompts=("mixed test",),
                                              duration_s=1.0, tasks=(Task.TEXT2MUSIC, Task.REPAINT, Task.COVER),
                                              source=str(song), include_base=False))
    events = list(run(config))
    assert events[-1].reason == "complete"
    with safe_open(str(tmp_path / "run" / "final" / "adapter_model.safetensors"), "pt") as handle:
        assert handle.metadata()["tasks"] == "text2music,repaint,cover"
    index = [json.loads(line) for line in (tmp_path / "run" / "auditions" / "index.jsonl").read_text().splitlines()]
    assert {record["task"] for record in index} == {"text2music", "repaint", "cover"}
    for record in index:
        assert (tmp_path / "run" / "auditions" / record["file"]).stat().st_size > 1000


def test_a_mixed_task_run_killed_mid_run_resumes_to_the_uninterrupted_run(train_cache, tiny_bundle, tmp_path):
    """kill -9 (os._exit) at the 5th micro-step: the task draws and repaint spans continue exactly."""
    def args(out):
        return ["train", "--cache", str(train_cache), "--checkpoint-dir", str(tiny_bundle), "--out", str(out),
                "--crop-seconds", "1.92", "--epochs", "3", "--grad-accum", "1", "--rank", "4", "--seed", "5",
                "--save-every", "2", "--set", "log.tensorboard=false", "--set", "objective.task=mixed"]

    assert main(args(tmp_path / "straight")) == 0
    run_killed(("acetune.train.trainer:Trainer._micro_step", "5"), args(tmp_path / "killed"))
    assert main([*args(tmp_path / "killed"), "--resume-from", "latest"]) == 0
    a = load_file(str(tmp_path / "straight" / "final" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "final" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
