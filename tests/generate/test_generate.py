"""Generation on the tiny bundle: reproducibility, batch independence, files, and bad input."""

from __future__ import annotations

import json

import pytest
import soundfile
import torch

from acetune.cli.app import main
from acetune.cli.generate_cmd import parse_adapter
from acetune.errors import CheckpointWriteError, ConfigError, ModelLoadError
from acetune.generate import Studio, Track, refuse_existing, take_paths
from acetune.generate.tracks import MIN_FRAMES


@pytest.fixture(scope="module")
def studio(tiny_bundle) -> Studio:
    return Studio.open(tiny_bundle, device="cpu")


def test_the_prompt_is_the_preprocessing_prompt():
    track = Track("warm piano", lyrics="", bpm=90, keyscale="A minor", timesignature="4", duration_s=12.3)
    assert track.prompt == ("# Instruction\nFill the audio semantic mask based on the given conditions:\n\n"
                            "# Caption\nwarm piano\n\n# Metas\n- bpm: 90\n- timesignature: 4\n- keyscale: A minor\n"
                            "- duration: 12 seconds\n<|endoftext|>\n")
    assert track.lyric_text == "# Languages\nen\n\n# Lyric\n[Instrumental]<|endoftext|>"
    assert track.frames == 307 and track.samples == 307 * 1920
    assert Track("x", duration_s=2.0).render_frames == MIN_FRAMES  # short takes render 128 frames, then trim


def test_trigger_word_is_added_once_where_it_was_trained():
    assert Track("soft piano").with_trigger("mystyle").caption == "mystyle, soft piano"
    assert Track("soft piano").with_trigger("mystyle", "append").caption == "soft piano, mystyle"
    assert Track("MyStyle soft piano").with_trigger("mystyle").caption == "MyStyle soft piano"
    assert Track("soft piano").with_trigger("mystyle", "replace").caption == "mystyle, soft piano"


def test_same_seed_same_audio_and_each_take_is_independent_of_the_batch(studio):
    track = Track("upbeat pop song with piano", duration_s=3.0)
    settings = studio.settings()
    batch = studio.render(track, [7, 8], settings)
    assert batch.shape == (2, 2, track.samples) and batch.dtype == torch.float32
    assert torch.equal(studio.render(track, [7, 8], settings), batch)  # same seeds: bit-identical audio
    alone = studio.render(track, [8], settings)
    assert torch.allclose(batch[1:], alone, atol=1e-5)  # seed 8 alone = seed 8 as the second take (up to GEMM order)
    assert (batch[0] - batch[1]).abs().max() > 1e-4  # different seeds, different takes
    assert batch.abs().max() <= 1.0 + 1e-6  # anti-clipped


def test_settings_follow_the_variant_and_refuse_nonsense(studio):
    settings = studio.settings()
    assert studio.variant.kind == "turbo" and settings.kind == "turbo" and settings.shift == 3.0
    with pytest.raises(ConfigError, match="guidance"):
        studio.settings(guidance=7.0)  # turbo has no CFG
    with pytest.raises(ConfigError):
        Track("x", duration_s=0.2)
    with pytest.raises(ConfigError, match="caption"):
        Track("  ")


def test_outputs_are_checked_before_rendering(tmp_path):
    paths = take_paths(tmp_path, "song", [1, 2], "flac")
    assert [p.name for p in paths] == ["song_seed1.flac", "song_seed2.flac"]
    paths[1].with_suffix(".json").write_text("{}")
    with pytest.raises(CheckpointWriteError, match="already exists") as err:
        refuse_existing(paths, overwrite=False)
    assert "song_seed2.json" in str(err.value)
    refuse_existing(paths, overwrite=True)
    with pytest.raises(ConfigError, match="wma"):
        take_paths(tmp_path, "song", [1], "wma")


def test_adapter_argument_takes_an_optional_strength():
    assert parse_adapter("runs/x/final@0.5") == (parse_adapter("runs/x/final")[0], 0.5)
    assert parse_adapter("me@home/lora")[1] == 1.0


@pytest.mark.parametrize("audio_format", ["flac", "opus"])
def test_generate_command_writes_audio_and_a_sidecar(tiny_bundle, tmp_path, capsys, audio_format):
    args = ["generate", "--checkpoint-dir", str(tiny_bundle), "--caption", "lo-fi hip hop beat", "--duration", "2",
            "--seed", "5", "--batch", "2", "--bpm", "80", "--out", str(tmp_path), "--format", audio_format,
            "--device", "cpu"]
    assert main(args) == 0
    files = sorted(tmp_path.glob(f"*.{audio_format}"))
    assert [f.name for f in files] == [f"lo-fi_hip_hop_beat_seed5.{audio_format}",
                                        f"lo-fi_hip_hop_beat_seed6.{audio_format}"]
    sidecar = json.loads(files[0].with_suffix(".json").read_text())
    assert sidecar["seed"] == 5 and sidecar["track"]["bpm"] == 80 and sidecar["sampler"]["kind"] == "turbo"
    assert "- bpm: 80\n" in sidecar["prompt"] and sidecar["adapters"] == []
    if audio_format == "flac":
        audio, rate = soundfile.read(str(files[0]))
        assert rate == 48000 and audio.shape == (2 * 48000, 2)
    assert main(args) == 2  # the outputs exist now
    assert "already exists" in capsys.readouterr().err


def test_generate_names_a_missing_adapter(tiny_bundle, tmp_path, capsys):
    missing = tmp_path / "no-such-adapter"
    assert main(["generate", "--checkpoint-dir", str(tiny_bundle), "--caption", "x", "--duration", "2",
                 "--adapter", str(missing), "--out", str(tmp_path / "o"), "--device", "cpu"]) == 2
    assert str(missing) in capsys.readouterr().err


def test_a_missing_checkpoint_folder_is_named(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        Studio.open(tmp_path / "nothing", device="cpu")


def test_generate_refuses_an_insane_strength_before_loading_anything(tiny_bundle, tmp_path, capsys):
    adapter = tmp_path / "final"
    adapter.mkdir()
    assert main(["generate", "--checkpoint-dir", str(tiny_bundle), "--caption", "x", "--adapter", f"{adapter}@3",
                 "--out", str(tmp_path / "o"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "strength 3.0 is outside [-2.0, 2.0]" in err and str(adapter) in err


def test_a_merged_model_renders_what_base_plus_adapter_renders(tiny_bundle, tmp_path):
    """End to end through the sampler and the VAE: merge == patch == live adapter, per spec §6."""
    import shutil

    from acetune.adapters import attach, save_adapter
    from acetune.adapters.merge import merge_into_model
    from acetune.config import AdapterConfig, AdapterKind
    from acetune.model.checkpoint import load_model

    bundle = tmp_path / "checkpoints"
    shutil.copytree(tiny_bundle, bundle)
    decoder = load_model(bundle / "acestep-v15-turbo").model.decoder
    attached = attach(decoder, AdapterConfig(kind=AdapterKind.LORA, rank=4, alpha=8.0, dropout=0.0), seed=0)
    with torch.no_grad():
        for name, param in attached.trainable_parameters.items():
            param.add_(torch.randn(param.shape, generator=torch.Generator().manual_seed(len(name))) * 0.2)
    save_adapter(attached, tmp_path / "lora")
    merge_into_model(bundle / "acestep-v15-turbo", [(tmp_path / "lora", 1.0)], bundle / "merged")

    track = Track("lo-fi hip hop beat", duration_s=2.0)
    base = Studio.open(bundle, device="cpu")
    settings = base.settings()
    plain = base.render(track, [3], settings)
    base.add_adapter(tmp_path / "lora", 1.0)
    patched = base.render(track, [3], settings)
    merged = Studio.open(bundle, model="merged", device="cpu").render(track, [3], settings)
    assert (patched - plain).abs().max() > 1e-3  # the adapter changes the audio
    assert torch.allclose(merged, patched, atol=1e-5)
    base.patcher.unload()
    assert torch.equal(base.render(track, [3], settings), plain)  # unloading restores the base exactly


def test_an_sde_take_does_not_depend_on_its_batch(studio):
    track = Track("upbeat pop song with piano", duration_s=2.0)
    settings = studio.settings(method="sde")
    batch = studio.render(track, [42, 43], settings)
    alone = studio.render(track, [43], settings)
    assert torch.allclose(batch[1:], alone, atol=1e-5)  # was off by ~0.02 when the batch shared one SDE generator
    assert (batch[0] - studio.render(track, [42], studio.settings())).abs().max() > 1e-4  # SDE differs from ODE


def test_a_bad_device_name_is_a_clear_error(tiny_bundle, tmp_path, capsys):
    assert main(["generate", "--checkpoint-dir", str(tiny_bundle), "--caption", "x", "--out", str(tmp_path),
                 "--device", "gpu"]) == 2
    assert "unknown device 'gpu'" in capsys.readouterr().err
