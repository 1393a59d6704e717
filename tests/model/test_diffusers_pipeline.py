"""A diffusers-format ACE-Step pipeline folder: acetune writes one diffusers loads, and reads one like the official
layout (preprocess, generate, merge, fingerprints); adapters load in diffusers' pipeline at their trained strength."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from acetune.adapters import attach, save_adapter
from acetune.adapters.merge import merge_into_model
from acetune.config import AdapterConfig, AdapterKind
from acetune.errors import ConfigError, ModelLoadError
from acetune.model.bundle import resolve_bundle
from acetune.model.checkpoint import load_model, read_model_config
from acetune.model.diffusers_keys import key_to_diffusers
from acetune.model.diffusers_writer import parts_of_bundle, save_pipeline
from acetune.model.summary import summarize_checkpoint
from acetune.model.text_encoder import TOKENIZER_FILES, load_text_encoder, tokenizer_hash

NAME = "acestep-v15-turbo-diffusers"


@pytest.fixture(scope="module")
def official(tiny_bundle) -> Path:
    return resolve_bundle(tiny_bundle).dit


@pytest.fixture(scope="module")
def pipeline(tiny_bundle, tmp_path_factory) -> Path:
    """The tiny bundle converted by acetune; holds its own vae/, text_encoder/, tokenizer/."""
    bundle = resolve_bundle(tiny_bundle)
    loaded = load_model(bundle.dit)
    out = tmp_path_factory.mktemp("diffusers") / NAME
    return save_pipeline(loaded.model, out, silence_latent=loaded.silence_latent, parts=parts_of_bundle(bundle))


@pytest.fixture(scope="module")
def pipe(pipeline):
    from diffusers import AceStepPipeline

    return AceStepPipeline.from_pretrained(pipeline)


def copy_of(folder: Path, target: Path) -> Path:
    shutil.copytree(folder, target)
    return target


def test_the_folder_has_diffusers_layout(pipeline):
    index = json.loads((pipeline / "model_index.json").read_text())
    assert index["_class_name"] == "AceStepPipeline"
    assert index["transformer"] == ["diffusers", "AceStepTransformer1DModel"]
    assert index["text_encoder"] == ["transformers", "Qwen3Model"]
    for component in ("transformer", "condition_encoder", "audio_tokenizer", "audio_token_detokenizer"):
        assert (pipeline / component / "diffusion_pytorch_model.safetensors").is_file()
    assert json.loads((pipeline / "scheduler" / "scheduler_config.json").read_text())["num_train_timesteps"] == 1
    assert {p.name for p in (pipeline / "tokenizer").iterdir()} <= set(TOKENIZER_FILES)


def test_diffusers_loads_what_acetune_writes(pipe, official):
    ours = load_model(official)
    state = {key_to_diffusers(k): v for k, v in ours.model.state_dict().items()}
    for component in ("transformer", "condition_encoder", "audio_tokenizer", "audio_token_detokenizer"):
        theirs = getattr(pipe, component).state_dict()
        assert all(torch.equal(theirs[name], value) for (c, name), value in state.items() if c == component)
    assert torch.equal(pipe.condition_encoder.silence_latent, ours.silence_latent)
    assert pipe.is_turbo
    audio = pipe("warm piano", audio_duration=1.0, num_inference_steps=2, generator=torch.Generator().manual_seed(0)).audios
    assert audio.shape[:2] == (1, 2) and bool(torch.isfinite(audio).all())


def test_acetune_reads_the_pipeline_as_the_official_folder(pipeline, official):
    a, b = load_model(official), load_model(pipeline)
    assert all(torch.equal(value, b.model.state_dict()[key]) for key, value in a.model.state_dict().items())
    assert torch.equal(a.silence_latent, b.silence_latent)
    assert a.variant == b.variant and b.variant.name == "turbo"
    official_only = ("architectures", "auto_map", "dtype")  # bookkeeping keys of config.json that diffusers drops
    assert read_model_config(pipeline).to_dict() == {k: v for k, v in a.config.to_dict().items() if k not in official_only}
    summary = summarize_checkpoint(pipeline)
    assert summary.keys.ok and summary.silence_frames == 15000


def test_the_bundle_is_the_pipeline_and_its_tokenizer_folder_is_used(pipeline, official, tmp_path):
    bundle = resolve_bundle(pipeline)
    assert (bundle.dit, bundle.vae, bundle.text_encoder) == (pipeline, pipeline / "vae", pipeline / "text_encoder")
    assert resolve_bundle(pipeline.parent, model=NAME) == bundle
    bare = copy_of(pipeline, tmp_path / NAME)  # as diffusers' save_pretrained writes it: no tokenizer files there
    for name in TOKENIZER_FILES:
        (bare / "text_encoder" / name).unlink(missing_ok=True)
    encoder = load_text_encoder(bare / "text_encoder")
    assert encoder.token_ids("# Caption\nwarm piano", 64).tolist() == \
        load_text_encoder(official.parent / "Qwen3-Embedding-0.6B").token_ids("# Caption\nwarm piano", 64).tolist()
    assert tokenizer_hash(bare / "text_encoder") == tokenizer_hash(official.parent / "Qwen3-Embedding-0.6B")


def test_unusable_pipelines_are_named(pipeline, tmp_path):
    other = copy_of(pipeline, tmp_path / "other")
    (other / "model_index.json").write_text(json.dumps({"_class_name": "StableAudioPipeline"}))
    with pytest.raises(ModelLoadError, match="StableAudioPipeline.*not an AceStepPipeline") as err:
        load_model(other)
    assert err.value.path == other / "model_index.json"
    partial = copy_of(pipeline, tmp_path / "partial")
    shutil.rmtree(partial / "condition_encoder")
    with pytest.raises(ModelLoadError, match="no condition_encoder/config.json"):
        resolve_bundle(partial)
    silent = copy_of(pipeline, tmp_path / "silent")
    weights = silent / "condition_encoder" / "diffusion_pytorch_model.safetensors"
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(weights))
    save_file({**tensors, "silence_latent": torch.zeros_like(tensors["silence_latent"])}, str(weights))
    with pytest.raises(ModelLoadError, match="silence_latent is all zeros") as err:
        load_model(silent)
    assert err.value.path == weights


def test_a_pipeline_without_audio_tokenizers_generates_and_merges_only_as_diffusers(pipeline, tmp_path):
    lean = copy_of(pipeline, tmp_path / "lean")
    for component in ("audio_tokenizer", "audio_token_detokenizer"):
        shutil.rmtree(lean / component)
    loaded = load_model(lean, components=("decoder", "encoder", "null_condition_emb"))
    assert loaded.silence_latent is not None
    lora = _saved_lora(lean, tmp_path / "lora")
    with pytest.raises(ConfigError, match="no audio_tokenizer") as err:
        merge_into_model(lean, [(lora, 1.0)], tmp_path / "official")
    assert "--format diffusers" in err.value.fix
    out = merge_into_model(lean, [(lora, 1.0)], tmp_path / "merged", format="diffusers")
    assert not (out / "audio_tokenizer").exists()
    assert "audio_tokenizer" not in json.loads((out / "model_index.json").read_text())


def _saved_lora(model_folder: Path, folder: Path, **changes) -> Path:
    decoder = load_model(model_folder, components=("decoder",)).model.decoder
    config = AdapterConfig(**{"kind": AdapterKind.LORA, "rank": 4, "alpha": 8.0, "dropout": 0.1, **changes})
    attached = attach(decoder, config, seed=0)
    with torch.no_grad():
        for name, param in attached.trainable_parameters.items():
            param.add_(torch.randn(param.shape, generator=torch.Generator().manual_seed(len(name))) * 0.2)
    save_adapter(attached, folder)
    return folder


def test_preprocess_and_generation_from_the_pipeline_equal_the_official_folder(pipeline, official, tmp_path):
    from acetune.audio import synthesize_song, write_audio
    from acetune.data.cache import CacheReader
    from acetune.data.dataset import scan_dataset
    from acetune.data.fingerprint import bundle_fingerprint, read_fingerprint
    from acetune.data.preprocess import preprocess
    from acetune.generate import Studio, Track

    songs = tmp_path / "songs"
    songs.mkdir()
    write_audio(songs / "a.wav", synthesize_song(seed=0, duration_s=2.0, bpm=120, key="C major"), 48000)
    (songs / "a.caption.txt").write_text("bright pop")
    caches = {}
    for name, folder in (("official", official), ("pipeline", pipeline)):
        list(preprocess(scan_dataset(songs).dataset, folder, tmp_path / name))
        reader = CacheReader(tmp_path / name)
        caches[name] = reader.load(0)
    assert caches["official"].keys() == caches["pipeline"].keys()
    assert all(torch.equal(caches["official"][k], caches["pipeline"][k]) for k in caches["official"])
    ours, theirs = read_fingerprint(tmp_path / "official"), read_fingerprint(tmp_path / "pipeline")
    assert ours.differences(theirs) == [f"model: cache {ours.model[:12]}, now {theirs.model[:12]}"]  # other files
    assert bundle_fingerprint(resolve_bundle(pipeline), theirs.options) == theirs  # training accepts this cache

    track = Track("lo-fi hip hop beat", duration_s=2.0)
    a, b = Studio.open(official, device="cpu"), Studio.open(pipeline, device="cpu")
    assert torch.equal(a.render(track, [3], a.settings()), b.render(track, [3], b.settings()))


def test_the_model_fingerprint_covers_the_component_folders(pipeline, tmp_path):
    from acetune.data.fingerprint import model_digest

    changed = copy_of(pipeline, tmp_path / NAME)
    before = model_digest(changed)
    config = changed / "transformer" / "config.json"
    config.write_text(config.read_text().replace('"patch_size": 2', '"patch_size": 2 '))
    assert model_digest(changed) != before  # only the root's model_index.json was digested before


@pytest.mark.parametrize("source_layout", ["official", "pipeline"])
def test_merge_writes_either_layout_from_either_layout(source_layout, pipeline, official, tmp_path, pipe):
    from diffusers import AceStepPipeline

    source = official if source_layout == "official" else pipeline
    lora = _saved_lora(official, tmp_path / "lora")
    flat = load_model(merge_into_model(source, [(lora, 0.7)], tmp_path / "flat")).model.state_dict()
    reference = load_model(merge_into_model(official, [(lora, 0.7)], tmp_path / "reference")).model.state_dict()
    assert all(torch.equal(reference[k], v) for k, v in flat.items())
    merged = merge_into_model(source, [(lora, 0.7)], tmp_path / "merged", format="diffusers")
    loaded = AceStepPipeline.from_pretrained(merged)
    weights = loaded.transformer.state_dict()
    assert all(torch.equal(weights[name], reference[key]) for key in reference
               for component, name in [key_to_diffusers(key)] if component == "transformer")
    assert not torch.equal(weights["layers.0.self_attn.to_q.weight"], pipe.transformer.state_dict()["layers.0.self_attn.to_q.weight"])
    assert json.loads((merged / "model_index.json").read_text())["tokenizer"] == \
        json.loads((pipeline / "model_index.json").read_text())["tokenizer"]


@pytest.fixture()
def fresh_pipe(pipeline):
    from diffusers import AceStepPipeline

    return AceStepPipeline.from_pretrained(pipeline)


def _outputs(official: Path, adapter: Path | None, pipe) -> tuple[torch.Tensor, torch.Tensor]:
    """(acetune's decoder with `adapter` live, diffusers' transformer as loaded) on the same fixed inputs."""
    from acetune.adapters import load_adapter

    decoder = load_model(official, components=("decoder",)).model.decoder.eval()
    if adapter is not None:
        load_adapter(decoder, adapter).decoder.eval()
    g = torch.Generator().manual_seed(0)
    x, ctx, states = torch.randn(2, 24, 8, generator=g), torch.randn(2, 24, 16, generator=g), torch.randn(2, 7, 64, generator=g)
    args = (x, torch.tensor([0.3, 0.8]), torch.tensor([0.1, 0.5]), states, ctx)
    with torch.no_grad():
        theirs = pipe.transformer(*args).sample
        assert torch.equal(theirs, pipe.transformer(*args).sample)  # no dropout left active
        return decoder(*args), theirs


@pytest.mark.parametrize("kind", [AdapterKind.LORA, AdapterKind.DORA])
def test_an_acetune_adapter_folder_loads_in_the_pipeline_at_its_trained_strength(kind, official, fresh_pipe, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    folder = _saved_lora(official, tmp_path / "lora", kind=kind)  # alpha / r = 2, trained with dropout 0.1
    base, _ = _outputs(official, None, fresh_pipe)
    fresh_pipe.load_lora_weights(str(folder))
    ours, theirs = _outputs(official, folder, fresh_pipe)
    assert torch.equal(ours, theirs) and (ours - base).abs().max() > 1e-2
    fresh_pipe.unload_lora_weights()
    weights = folder / "adapter_model.safetensors"  # the same file without acetune's diffusers header
    with safe_open(str(weights), "pt") as handle:
        save_file({k: handle.get_tensor(k) for k in handle.keys()}, str(tmp_path / "bare.safetensors"))
    fresh_pipe.load_lora_weights(str(tmp_path / "bare.safetensors"))
    _, headerless = _outputs(official, None, fresh_pipe)
    assert (headerless - ours).abs().max() > 1e-2  # diffusers' default alpha = r: half the trained strength


def test_exported_files_load_in_the_pipeline(official, fresh_pipe, tmp_path):
    from acetune.adapters.diffusers_export import export_diffusers

    mlp_only = _saved_lora(official, tmp_path / "mlp", projections=("v_proj",), target_mlp=True)
    assert "lora_adapter_metadata" not in _header(mlp_only / "adapter_model.safetensors")  # diffusers would drop it
    fresh_pipe.load_lora_weights(str(export_diffusers(mlp_only, tmp_path / "mlp.safetensors")))
    ours, theirs = _outputs(official, mlp_only, fresh_pipe)
    assert torch.equal(ours, theirs)
    fresh_pipe.unload_lora_weights()

    lokr = _saved_lora(official, tmp_path / "lokr", kind=AdapterKind.LOKR, factor=4, target_mlp=True, dropout=0.0)
    exported = export_diffusers(lokr, tmp_path / "lokr.safetensors")
    with pytest.raises(ValueError, match="Invalid LoRA checkpoint"):  # the pipeline loader takes "lora" keys only
        fresh_pipe.load_lora_weights(str(exported))
    fresh_pipe.transformer.load_lora_adapter(str(exported), prefix="transformer", use_safetensors=True)
    ours, theirs = _outputs(official, lokr, fresh_pipe)
    base, _ = _outputs(official, None, fresh_pipe)
    # LyCORIS and PEFT build kron(w1, w2) in another order: float noise, measured 7e-7 here
    assert (ours - theirs).abs().max() <= 1e-5 and (ours - base).abs().max() > 1e-2


def _header(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        return dict(handle.metadata() or {})


def test_the_merge_command_writes_a_pipeline(tiny_bundle, official, tmp_path, capsys):
    from acetune.cli.app import main

    lora = _saved_lora(official, tmp_path / "lora")
    out = tmp_path / "merged"
    assert main(["merge", "--adapter", f"{lora}@0.5", "--checkpoint-dir", str(tiny_bundle), "--out", str(out),
                 "--format", "diffusers"]) == 0
    assert "a diffusers AceStepPipeline folder" in capsys.readouterr().out
    assert load_model(out).variant.name == "turbo" and (out / "vae" / "config.json").is_file()
    assert main(["merge", "--adapter", str(lora), "--checkpoint-dir", str(tiny_bundle), "--out", str(tmp_path / "x"),
                 "--format", "onnx"]) == 2
    assert "unknown model format 'onnx'" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_training_on_the_pipeline_equals_training_on_the_official_folder(pipeline, official, tmp_path, fresh_pipe):
    from safetensors.torch import load_file

    from acetune.audio import synthesize_song, write_audio
    from acetune.config import DataConfig, LogConfig, LoopConfig, OptimConfig, RunConfig, SaveConfig
    from acetune.data.dataset import scan_dataset
    from acetune.data.preprocess import preprocess
    from acetune.events import Finished
    from acetune.train.loop import run

    songs = tmp_path / "songs"
    songs.mkdir()
    for seed in (0, 1):
        write_audio(songs / f"s{seed}.wav", synthesize_song(seed=seed, duration_s=2.0, bpm=120, key="C major"), 48000)
    finals = {}
    for name, folder in (("official", official), ("pipeline", pipeline)):
        list(preprocess(scan_dataset(songs).dataset, folder, tmp_path / f"cache-{name}"))
        config = RunConfig(
            data=DataConfig(cache=str(tmp_path / f"cache-{name}"), checkpoint_dir=str(folder), crop_frames=32),
            adapter=AdapterConfig(kind=AdapterKind.LORA, rank=4, alpha=8.0, dropout=0.0),
            optim=OptimConfig(lr=1e-2, grad_accum=1), loop=LoopConfig(epochs=1, seed=3, device="cpu"),
            save=SaveConfig(output_dir=str(tmp_path / f"run-{name}"), save_every=0, keep_last=1),
            log=LogConfig(tensorboard=False))
        events = list(run(config))
        assert isinstance(events[-1], Finished) and events[-1].reason == "complete"
        finals[name] = tmp_path / f"run-{name}" / "final"
    a, b = (load_file(str(finals[n] / "adapter_model.safetensors")) for n in ("official", "pipeline"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    fresh_pipe.load_lora_weights(str(finals["pipeline"]))  # the run's folder, as saved, into diffusers
    ours, theirs = _outputs(official, finals["pipeline"], fresh_pipe)
    assert torch.equal(ours, theirs)


def test_convert_round_trips_and_refuses_its_own_source(tiny_bundle, official, tmp_path, capsys):
    from acetune.cli.app import main

    there = tmp_path / "pipe"
    assert main(["model", "convert", str(official), "--out", str(there), "--format", "diffusers"]) == 0
    assert "diffusers layout" in capsys.readouterr().out
    back = tmp_path / "back"
    assert main(["model", "convert", str(there), "--out", str(back), "--format", "official"]) == 0
    a, b = load_model(official), load_model(back)
    assert all(torch.equal(v, b.model.state_dict()[k]) for k, v in a.model.state_dict().items())
    assert torch.equal(a.silence_latent, b.silence_latent) and not (back / "model_index.json").exists()
    assert main(["model", "convert", str(there), "--out", str(there), "--format", "official", "--overwrite"]) == 2
    assert "would overwrite the base model it is made from" in capsys.readouterr().err
    assert load_model(there).variant.name == "turbo"  # untouched
