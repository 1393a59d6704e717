"""`--with omni` on a tiny random Qwen2.5-Omni thinker built from a config (no weights can be downloaded here):
the exact text the model reads, a scripted answer written as caption and genre with their source, and the
named errors for a missing model and for quantization where it cannot work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from acetune.errors import ConfigError, ModelLoadError
from acetune.label import LabelOptions, Labelled, label_dataset, open_labellers
from acetune.label.cloud import PROMPT
from acetune.label.omni import SYSTEM_PROMPT, chat_text, quantization_config
from tests.label.conftest import write_songs

_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>",
             "<|vision_bos|>", "<|IMAGE|>", "<|VIDEO|>", "<|vision_eos|>"]


def write_tiny_omni(folder: Path) -> Path:
    """A Qwen2.5-Omni-shaped folder: a 1-layer thinker, a byte-level BPE with the chat and audio tokens, and
    a 128-bin Whisper feature extractor (the real model's)."""
    from transformers import (PreTrainedTokenizerFast, Qwen2_5OmniThinkerConfig,
                              Qwen2_5OmniThinkerForConditionalGeneration, WhisperFeatureExtractor)

    from acetune.model.tiny_bundle import train_byte_bpe

    bpe = train_byte_bpe([PROMPT, SYSTEM_PROMPT, "caption: warm lo-fi hip hop, soft piano\ngenre: lo-fi, hip hop"],
                         _SPECIALS)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=128).save_pretrained(folder)
    ids = tokenizer.convert_tokens_to_ids
    torch.manual_seed(0)
    config = Qwen2_5OmniThinkerConfig(
        audio_config={"num_mel_bins": 128, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 32,
                      "d_model": 16, "output_dim": 32},
        vision_config={"depth": 1, "hidden_size": 16, "intermediate_size": 32, "num_heads": 2, "out_hidden_size": 32,
                       "fullatt_block_indexes": [0]},
        text_config={"vocab_size": 64 * -(-len(tokenizer) // 64), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [1, 1, 2]}},
        audio_token_index=ids("<|AUDIO|>"), audio_start_token_id=ids("<|audio_bos|>"),
        audio_end_token_id=ids("<|audio_eos|>"), image_token_index=ids("<|IMAGE|>"),
        video_token_index=ids("<|VIDEO|>"), vision_start_token_id=ids("<|vision_bos|>"),
        vision_end_token_id=ids("<|vision_eos|>"))
    model = Qwen2_5OmniThinkerForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids("<|im_end|>")
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def omni(tmp_path_factory):
    folder = write_tiny_omni(tmp_path_factory.mktemp("omni") / "Qwen2.5-Omni-tiny")
    [captioner] = open_labellers(folder.parent, LabelOptions(with_=("omni",), device="cpu"))
    return captioner


class _Script:
    """Forces the generated ids to be `ids` (then the end of the turn)."""

    def __init__(self, ids: list[int], prompt_length: int):
        self.ids, self.prompt_length = ids, prompt_length

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        forced = torch.full_like(scores, -torch.inf)
        forced[:, self.ids[min(input_ids.shape[1] - self.prompt_length, len(self.ids) - 1)]] = 0.0
        return forced


def test_the_thinker_reads_the_documented_chat_with_one_audio_token_per_frame(omni, tmp_path):
    song = write_songs(tmp_path, {"a.wav": {}})["a.wav"]
    inputs = omni.inputs(song)
    frames = int((inputs["input_ids"] == omni.tokenizer.convert_tokens_to_ids("<|AUDIO|>")).sum())
    assert frames == 37  # 1.5 s: 150 feature frames, (150 - 1) // 2 + 1 = 75, then (75 - 2) // 2 + 1 = 37
    assert omni.tokenizer.decode(inputs["input_ids"][0]) == chat_text(frames)
    assert chat_text(2) == ("<|im_start|>system\n" + SYSTEM_PROMPT + "<|im_end|>\n<|im_start|>user\n"
                            "<|audio_bos|><|AUDIO|><|AUDIO|><|audio_eos|>" + PROMPT + "<|im_end|>\n"
                            "<|im_start|>assistant\n")
    assert inputs["input_features"].shape == (1, 128, 3000) and inputs["feature_attention_mask"].sum() == 150


def test_a_scripted_answer_becomes_caption_and_genre_with_their_source(omni, tmp_path):
    paths = write_songs(tmp_path / "songs", {"a.wav": {}, "b.wav": {"genre": "mine"}})
    answer = "caption: warm lo-fi hip hop, soft piano\ngenre: lo-fi, hip hop"
    ids = omni.tokenizer(answer, add_special_tokens=False).input_ids + [omni.tokenizer.eos_token_id]
    omni.logits_processors = [_Script(ids, omni.inputs(paths["a.wav"])["input_ids"].shape[1])]
    try:
        events = _label_with(omni, tmp_path / "songs")
    finally:
        omni.logits_processors = []
    assert len([e for e in events if isinstance(e, Labelled)]) == 2
    a = json.loads(paths["a.wav"].with_suffix(".json").read_text())
    assert a["caption"] == "warm lo-fi hip hop, soft piano" and a["genre"] == "lo-fi, hip hop"
    assert a["label_sources"] == {"caption": "omni:Qwen2.5-Omni-tiny", "genre": "omni:Qwen2.5-Omni-tiny"}
    b = json.loads(paths["b.wav"].with_suffix(".json").read_text())
    assert b["genre"] == "mine" and b["caption"] == "warm lo-fi hip hop, soft piano"


def _label_with(captioner, folder: Path) -> list:
    from acetune.data.dataset import scan_dataset

    return list(label_dataset(scan_dataset(folder).dataset, [captioner]))


def test_a_missing_model_folder_is_exit_2_naming_it_with_a_fix(tmp_path, capsys):
    from acetune.cli.app import main

    write_songs(tmp_path / "songs", {"a.wav": {}})
    missing = tmp_path / "Qwen2.5-Omni-7B"
    assert main(["dataset", "label", str(tmp_path / "songs"), "--checkpoint-dir", str(tmp_path), "--with", "omni",
                 "--omni-model", str(missing), "--device", "cpu"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{missing}: Qwen2.5-Omni folder not found" in err and "fix: pass --omni-model an existing folder" in err


def test_a_folder_that_is_not_qwen_omni_is_named(lm_bundle):
    folder = lm_bundle / "acestep-5Hz-lm-tiny"
    with pytest.raises(ModelLoadError, match="Qwen2.5-Omni") as info:
        open_labellers(lm_bundle, LabelOptions(with_=("omni",), omni_model=str(folder), device="cpu"))
    assert "--omni-model" in info.value.fix


@pytest.mark.parametrize(("bits", "device", "said"), [(4, "cpu", "needs a CUDA GPU"), (3, "cpu", "not 4 or 8")])
def test_quantization_where_it_cannot_work_is_a_config_error(bits, device, said):
    with pytest.raises(ConfigError, match=said):
        quantization_config(bits, torch.device(device), torch.float32)
    assert quantization_config(None, torch.device("cpu"), torch.float32) is None
