"""A tiny random Whisper folder built from a config (no weights can be downloaded here).

The layout is the real one: model (WhisperForConditionalGeneration), feature extractor, a byte-level BPE
tokenizer whose special tokens are Whisper's (start of transcript, the language tokens, task tokens,
no-timestamps) followed by the 1501 timestamp tokens <|0.00|> .. <|30.00|>, and a generation config that
names them, so transformers' ASR pipeline runs its real timestamp and language code on it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

_TEXT = ["la la love the night, dancing in the light", "hold me tight, we are alive tonight"]


def write_tiny_whisper(folder: Path, seed: int = 0) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (GenerationConfig, WhisperConfig, WhisperFeatureExtractor,
                              WhisperForConditionalGeneration, WhisperTokenizerFast)
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(_TEXT, trainer=trainer)
    vocab, merges = bpe.get_vocab(), _merges(bpe)
    languages = [f"<|{code}|>" for code in LANGUAGES]
    specials = ["<|startoftranscript|>", *languages, "<|translate|>", "<|transcribe|>", "<|startoflm|>",
                "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"]
    tokenizer = WhisperTokenizerFast(vocab=vocab, merges=merges, additional_special_tokens=specials)
    tokenizer.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(1501)])
    tokenizer.save_pretrained(folder)
    ids = tokenizer.convert_tokens_to_ids
    torch.manual_seed(seed)
    config = WhisperConfig(vocab_size=len(tokenizer), num_mel_bins=80, d_model=32, encoder_layers=1,
                           decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                           encoder_ffn_dim=64, decoder_ffn_dim=64, max_source_positions=1500,
                           max_target_positions=448, decoder_start_token_id=ids("<|startoftranscript|>"),
                           pad_token_id=ids("<|endoftext|>"), bos_token_id=ids("<|endoftext|>"),
                           eos_token_id=ids("<|endoftext|>"))
    WhisperForConditionalGeneration(config).save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
    generation = GenerationConfig(
        decoder_start_token_id=ids("<|startoftranscript|>"), eos_token_id=ids("<|endoftext|>"),
        pad_token_id=ids("<|endoftext|>"), no_timestamps_token_id=ids("<|notimestamps|>"),
        lang_to_id={token: ids(token) for token in languages}, is_multilingual=True,
        task_to_id={"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")},
        max_initial_timestamp_index=50, begin_suppress_tokens=[ids("<|endoftext|>")], max_length=448)
    generation.save_pretrained(folder)
    return Path(folder)


def _merges(bpe) -> list[tuple[str, str]]:
    """The trained merges as pairs (tokenizers writes them as "a b" strings or as [a, b] lists)."""
    merges = json.loads(bpe.to_str())["model"]["merges"]
    return [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
