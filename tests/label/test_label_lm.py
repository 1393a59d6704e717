"""The 5 Hz LM labeller on the tiny bundle: the exact prompt, codes as tokens, a scripted answer merged into
song.json (user values kept, sources recorded), resume, failures named, dry run, overwrite."""

from __future__ import annotations

import json

import pytest
import torch

from acetune.data.dataset import scan_dataset
from acetune.errors import ModelLoadError
from acetune.events import Finished, Skipped
from acetune.label import AlreadyLabelled, LabelOptions, Labelled, label_dataset, label_songs
from acetune.label.lm_format import UNDERSTAND_INSTRUCTION
from tests.label.conftest import write_songs

ANSWER = ("<think>\nbpm: 96\ncaption: dusty lo-fi beat\ngenres: hip hop\nkeyscale: A minor\nlanguage: en\n"
          "timesignature: 4\n</think>\n# Lyric\n[Verse]\nla la la")
SOURCE = "lm:acestep-5Hz-lm-tiny"


def _run(folder, labeller, **kwargs) -> list:
    return list(label_dataset(scan_dataset(folder).dataset, [labeller], **kwargs))


def _sidecar(path) -> dict:
    return json.loads(path.with_suffix(".json").read_text())


def test_prompt_is_the_documented_chat(lm_labeller):
    expected = ("<|im_start|>system\n# Instruction\n" + UNDERSTAND_INSTRUCTION + "\n\n<|im_end|>\n"
                "<|im_start|>user\n<|audio_code_0|><|audio_code_5|><|audio_code_63999|><|im_end|>\n"
                "<|im_start|>assistant\n")
    assert UNDERSTAND_INSTRUCTION == ("Understand the given musical conditions and describe the audio semantics "
                                      "accordingly:")
    assert lm_labeller.prompt([0, 5, 63999]) == expected


def test_codes_map_to_their_own_tokens(lm_labeller):
    tokenizer = lm_labeller.tokenizer
    ids = tokenizer(lm_labeller.prompt([3, 63999, 3]), add_special_tokens=False).input_ids
    code_ids = [i for i in ids if i in set(lm_labeller.code_ids)]
    assert code_ids == [lm_labeller.code_ids[3], lm_labeller.code_ids[63999], lm_labeller.code_ids[3]]
    assert tokenizer.convert_ids_to_tokens(code_ids) == ["<|audio_code_3|>", "<|audio_code_63999|>", "<|audio_code_3|>"]
    assert len(lm_labeller.code_ids) == 64000 == len(set(lm_labeller.code_ids))


def test_song_codes_are_the_dit_tokenizer_indices(lm_labeller, tmp_path):
    from acetune.audio import load_audio
    from acetune.model.vae import encode_latents

    path = write_songs(tmp_path, {"a.wav": {}})["a.wav"]
    coder = lm_labeller.coder
    codes = coder.codes(path)
    latents = encode_latents(coder.vae, torch.from_numpy(load_audio(path).waveform), generator=None, sample=False)
    _, indices, _ = coder.model.tokenize(latents[None], coder.silence, torch.ones(1, latents.shape[0]))
    assert len(codes) == -(-latents.shape[0] // 5) == 8  # 1.5 s = 37.5 -> 37 frames -> 8 codes of 5 frames
    assert codes == indices[0, :, 0].tolist()
    assert all(0 <= c < 64000 for c in codes)


def test_scripted_answer_is_written_with_sources_and_user_values_kept(lm_labeller, scripted, tmp_path):
    scripted(ANSWER.replace("bpm: 96", "bpm: 0"))  # an invalid bpm is dropped, not written
    paths = write_songs(tmp_path, {"a.wav": {"caption": "my own words", "mood": "dark"}, "b.wav": {}})
    events = _run(tmp_path, lm_labeller)
    labelled = {e.path.name: e for e in events if isinstance(e, Labelled)}
    a, b = _sidecar(paths["a.wav"]), _sidecar(paths["b.wav"])
    assert a["caption"] == "my own words" and a["mood"] == "dark"
    assert labelled["a.wav"].kept == ("caption",)
    assert b["caption"] == "dusty lo-fi beat" and b["genre"] == "hip hop" and b["keyscale"] == "A minor"
    assert b["language"] == "en" and b["timesignature"] == "4" and b["lyrics"] == "[Verse]\nla la la"
    assert "bpm" not in b and any(n.startswith("bpm '0' dropped") for n in labelled["b.wav"].notes)
    assert b["label_sources"] == {k: SOURCE for k in ("caption", "genre", "lyrics", "keyscale", "timesignature",
                                                      "language")}
    assert "caption" not in a["label_sources"] and list(a["label_runs"]) == [SOURCE]


def test_rerun_skips_labelled_songs_and_new_settings_replace_machine_values(lm_labeller, scripted, tmp_path):
    scripted(ANSWER)
    path = write_songs(tmp_path, {"a.wav": {"bpm": 120}})["a.wav"]
    _run(tmp_path, lm_labeller)
    before = path.with_suffix(".json").read_bytes()
    again = _run(tmp_path, lm_labeller)
    assert [type(e) for e in again if isinstance(e, (Labelled, AlreadyLabelled))] == [AlreadyLabelled]
    assert path.with_suffix(".json").read_bytes() == before
    scripted(ANSWER.replace("dusty lo-fi beat", "new words"))
    _run(tmp_path, lm_labeller, fields=("caption", "bpm"))  # other settings: labelled again
    data = _sidecar(path)
    assert data["caption"] == "new words" and data["bpm"] == 120  # machine value replaced, user's kept


def test_overwrite_replaces_user_values(lm_labeller, scripted, tmp_path):
    scripted(ANSWER)
    path = write_songs(tmp_path, {"a.wav": {"bpm": 120, "caption": "mine"}})["a.wav"]
    _run(tmp_path, lm_labeller, overwrite=True)
    data = _sidecar(path)
    assert (data["bpm"], data["caption"]) == (96, "dusty lo-fi beat")
    assert data["label_sources"]["bpm"] == SOURCE


def test_instrumental_song_gets_no_invented_lyrics(lm_labeller, scripted, tmp_path):
    scripted(ANSWER)
    path = write_songs(tmp_path, {"a.wav": {"is_instrumental": True}})["a.wav"]
    _run(tmp_path, lm_labeller)
    assert "lyrics" not in _sidecar(path)


def test_dry_run_writes_nothing(lm_labeller, scripted, tmp_path):
    scripted(ANSWER)
    path = write_songs(tmp_path, {"a.wav": {}})["a.wav"]
    events = _run(tmp_path, lm_labeller, dry_run=True)
    [event] = [e for e in events if isinstance(e, Labelled)]
    assert event.dry_run and event.written["caption"] == "dusty lo-fi beat"
    assert not path.with_suffix(".json").exists()


def test_failing_song_is_named_and_the_run_goes_on(lm_labeller, scripted, tmp_path):
    scripted(ANSWER)
    paths = write_songs(tmp_path, {"good.wav": {}})
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really audio" * 10)
    events = _run(tmp_path, lm_labeller)
    [skipped] = [e for e in events if isinstance(e, Skipped)]
    assert skipped.path == broken and skipped.reason.startswith("lm: ")
    assert _sidecar(paths["good.wav"])["caption"] == "dusty lo-fi beat"
    assert not broken.with_suffix(".json").exists()
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.summary["failed"] == 1 and finished.summary["labelled"] == 1


def test_unparseable_answer_is_a_named_failure(lm_labeller, scripted, tmp_path):
    scripted("I cannot say")
    write_songs(tmp_path, {"a.wav": {}})
    [skipped] = [e for e in _run(tmp_path, lm_labeller) if isinstance(e, Skipped)]
    assert "holds no labels" in skipped.reason and "I cannot say" in skipped.reason


def test_missing_lm_folder_is_an_error_with_a_fix(tiny_bundle, tmp_path):
    write_songs(tmp_path / "songs", {"a.wav": {}})
    with pytest.raises(ModelLoadError, match="no 5 Hz LM here") as info:
        list(label_songs(tmp_path / "songs", tiny_bundle, LabelOptions(device="cpu")))
    assert info.value.path == tiny_bundle and "acestep-5Hz-lm-1.7B" in info.value.fix


def test_unknown_variant_lists_the_folders(lm_bundle, tmp_path):
    write_songs(tmp_path / "songs", {"a.wav": {}})
    with pytest.raises(ModelLoadError, match="acestep-5Hz-lm-tiny"):
        list(label_songs(tmp_path / "songs", lm_bundle, LabelOptions(device="cpu", lm="4B")))


def test_lm_saying_instrumental_marks_the_song(lm_labeller, scripted, tmp_path):
    scripted("<think>\ncaption: ambient pads\n</think>\n# Lyric\n[Instrumental]")
    path = write_songs(tmp_path, {"a.wav": {}})["a.wav"]
    _run(tmp_path, lm_labeller)
    data = _sidecar(path)
    assert data["lyrics"] == "[Instrumental]" and data["is_instrumental"] is True
    assert data["label_sources"]["is_instrumental"] == SOURCE


def test_song_too_long_for_the_lm_is_named(lm_labeller, scripted, tmp_path, monkeypatch):
    from dataclasses import replace

    scripted(ANSWER)
    monkeypatch.setattr(lm_labeller, "lm_settings", replace(lm_labeller.lm_settings, max_new_tokens=9000))
    write_songs(tmp_path, {"a.wav": {}})
    [skipped] = [e for e in _run(tmp_path, lm_labeller) if isinstance(e, Skipped)]
    assert "too long for the LM" in skipped.reason and "> 8192" in skipped.reason
    assert "acetune dataset split" in skipped.reason


def test_values_written_by_analyze_or_import_are_no_longer_the_labellers(tmp_path):
    from acetune.data.labels import SampleLabels
    from acetune.data.sidecars import write_json_sidecar

    path = write_songs(tmp_path, {"a.wav": {"bpm": 50, "caption": "lm words",
                                            "label_sources": {"bpm": SOURCE, "caption": SOURCE}}})["a.wav"]
    write_json_sidecar(path, SampleLabels(bpm=120, caption="lm words"), overwrite_fields=True)
    data = _sidecar(path)
    assert data["bpm"] == 120 and data["label_sources"] == {"caption": SOURCE}  # caption unchanged: still the LM's
