"""A tiny random 5 Hz LM folder (`acestep-5Hz-lm-tiny/`) for tests and the demo: the real loading code
on random weights, in the upstream layout (a Qwen3 causal LM, its tokenizer with the audio-code tokens, a
chat template).

The tokenizer is a small byte-level BPE plus the chat special tokens, `<think>` / `</think>` and one token
`<|audio_code_N|>` per FSQ index (64000 for the levels [8, 8, 8, 5, 5, 5]), as the released LMs extend
Qwen3's vocabulary (spec model.md §7.4). The chat template is ChatML, which is what Qwen3's own template
renders for a system and a user message with the generation prompt added.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

LM_FOLDER = "acestep-5Hz-lm-tiny"
LM_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
_CORPUS = [
    "# Instruction\nUnderstand the given musical conditions and describe the audio semantics accordingly:\n\n",
    "bpm: 120\ncaption: bright synth pop with punchy drums\ngenres: pop, electronic\nduration: 30\n",
    "keyscale: C major\nlanguage: en\ntimesignature: 4\nF# minor, A minor, Bb major, G major, E minor\n",
    "# Lyric\n[Verse]\nla la la love the night, dancing in the light\n[Chorus]\nhold me tight\n[Instrumental]\n",
    "slow acoustic ballad, guitar, soft male voice, melancholic, warm bass, female vocals, energetic",
]


def write_tiny_lm(folder: str | Path, *, codebook_size: int = 64000, seed: int = 0) -> Path:
    """Write a tiny random LM (2 layers, width 32) whose vocabulary holds `codebook_size` audio codes."""
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    from acetune.model.tiny_bundle import train_byte_bpe

    folder = Path(folder)
    bpe = train_byte_bpe(_CORPUS, LM_SPECIAL_TOKENS)
    bpe.add_special_tokens([f"<|audio_code_{i}|>" for i in range(codebook_size)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(folder)
    torch.manual_seed(seed)
    vocab = 64 * math.ceil(len(tokenizer) / 64)
    config = Qwen3Config(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=8192,
                         rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    Qwen3ForCausalLM(config).save_pretrained(folder)
    return folder
