"""A tiny but complete checkpoints folder (DiT + VAE + text encoder + tokenizer) built offline.

The real bundle cannot be downloaded here, so tests and the demo exercise the real loading
code on random weights with the official folder layout:

    checkpoints/acestep-v15-turbo/   config.json, model.safetensors, silence_latent.pt
    checkpoints/vae/                 AutoencoderOobleck (hop 1920 = 25 latent frames/s)
    checkpoints/Qwen3-Embedding-0.6B/ Qwen3Model + a byte-level BPE tokenizer
    checkpoints/acestep-5Hz-lm-tiny/ (optional) a Qwen3 causal LM with the audio-code tokens

Latents are 8 channels instead of 64 so the VAE runs fast on a CPU.
"""

from __future__ import annotations

from pathlib import Path

import torch

from acetune.model.bundle import DEFAULT_MODEL, TEXT_ENCODER_FOLDER, VAE_FOLDER
from acetune.model.checkpoint import save_model
from acetune.model.config import ModelConfig
from acetune.model.initialization import init_weights
from acetune.model.acestep import AceStepModel
from acetune.model.tiny import _OFFICIAL_EXTRA, NAMED, synthetic_silence_latent

DIT_FOLDER = DEFAULT_MODEL
TINY_LATENT_CHANNELS = 8
TINY_TEXT_WIDTH = 32
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

_CORPUS = [  # enough text for a small byte-level BPE vocabulary over prompts and lyrics
    "# Instruction\nFill the audio semantic mask based on the given conditions:\n\n# Caption\n",
    "# Metas\n- bpm: 120\n- timesignature: 4\n- keyscale: C major\n- duration: 30 seconds\n",
    "# Languages\nen\n\n# Lyric\n[Verse]\n[Chorus]\n[Instrumental]\n",
    "upbeat pop song with piano, bass and drums, female vocals, energetic, warm synth pads",
    "slow acoustic ballad, guitar, soft male voice, melancholic, lo-fi hip hop beat, jazz chords",
    "la la la love the night, dancing in the light, hold me tight, we are alive tonight",
]


def tiny_dit_config() -> ModelConfig:
    """The golden tiny DiT, narrowed to 8 latent channels to match the tiny VAE."""
    data = {**NAMED["tiny"], "audio_acoustic_hidden_dim": TINY_LATENT_CHANNELS, "timbre_hidden_dim": TINY_LATENT_CHANNELS,
            "in_channels": 3 * TINY_LATENT_CHANNELS, "text_hidden_dim": TINY_TEXT_WIDTH}
    return ModelConfig.from_dict({"model_type": "acestep", **_OFFICIAL_EXTRA, **data})


def write_tiny_vae(folder: Path, seed: int = 0) -> Path:
    from diffusers import AutoencoderOobleck

    torch.manual_seed(seed)  # diffusers initialises from the global generator
    vae = AutoencoderOobleck(encoder_hidden_size=2 * TINY_LATENT_CHANNELS, downsampling_ratios=[2, 4, 4, 6, 10],
                             channel_multiples=[1, 1, 1, 1, 1], decoder_channels=8,
                             decoder_input_channels=TINY_LATENT_CHANNELS, audio_channels=2, sampling_rate=48000)
    vae.save_pretrained(folder)
    return Path(folder)


def train_byte_bpe(corpus: list[str], special_tokens: list[str], vocab_size: int = 400):
    """A small byte-level BPE (Qwen's kind of tokenizer) trained on `corpus`: any text encodes and decodes back."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special_tokens,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(corpus, trainer=trainer)
    return bpe


def write_tiny_text_encoder(folder: Path, seed: int = 0) -> Path:
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3Model

    bpe = train_byte_bpe(_CORPUS, SPECIAL_TOKENS)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    tokenizer.save_pretrained(folder)
    torch.manual_seed(seed)
    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=TINY_TEXT_WIDTH, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                         max_position_embeddings=4096, rope_theta=1_000_000.0, rms_norm_eps=1e-6)
    Qwen3Model(config).save_pretrained(folder)
    return Path(folder)


def write_tiny_bundle(root: str | Path, seed: int = 0, *, lm: bool = False) -> Path:
    """checkpoints/ with a tiny DiT, VAE and text encoder in the official layout (and, with `lm`, a tiny
    5 Hz LM in acestep-5Hz-lm-tiny/ for `acetune dataset label`)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    config = tiny_dit_config()
    model = init_weights(AceStepModel(config), seed)
    save_model(model, root / DIT_FOLDER, silence_latent=synthetic_silence_latent(config, frames=15000, seed=seed),
               dtype="fp32")
    write_tiny_vae(root / VAE_FOLDER, seed)
    write_tiny_text_encoder(root / TEXT_ENCODER_FOLDER, seed)
    if lm:
        from acetune.model.tiny_lm import LM_FOLDER, write_tiny_lm

        write_tiny_lm(root / LM_FOLDER, codebook_size=model.tokenizer.quantizer.codebook_size, seed=seed)
    return root
