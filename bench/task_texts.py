"""Task instruction encodings: encode each sample's caption per task when a run starts (acetune's choice),
encode it on the fly at every step, or read it from a per-task cache.

Run:  python bench/task_texts.py                          (tiny text encoder, CPU)
      python bench/task_texts.py --size real --device cuda --dtype bf16   (Qwen3-Embedding-0.6B shape)

Training repaint or cover changes only the caption part of the condition (its instruction line), so
per sample and task the trainer needs the projected caption states [Lt, 2048]. The three ways:
- at start: load the text encoder once, encode samples x tasks, free it (what `train/task_texts.py` does);
- per step: keep the text encoder loaded and encode each micro-batch's captions again;
- cached: preprocessing writes the states per task and each step reads them from the cache.
The text encoder has random weights of the chosen shape (the time does not depend on the values);
prompts are real caption prompts of ~120 tokens.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from safetensors.torch import load_file, save_file  # noqa: E402

from acetune.data.prompts import TASK_INSTRUCTIONS, build_caption_prompt, build_metas  # noqa: E402

SIZES = {  # Qwen3 shapes: hidden, layers, heads, kv heads, intermediate
    "tiny": (32, 2, 4, 2, 64),
    "real": (1024, 28, 16, 8, 3072),  # Qwen3-Embedding-0.6B (spec model.md §7)
}
CONDITION_WIDTH = 2048


def text_encoder(size: str, device: str, dtype: torch.dtype):
    from transformers import Qwen3Config, Qwen3Model

    hidden, layers, heads, kv, inter = SIZES[size]
    config = Qwen3Config(vocab_size=151669, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                         num_key_value_heads=kv, intermediate_size=inter, head_dim=hidden // heads if size == "tiny"
                         else 128)
    return Qwen3Model(config).to(device, dtype).eval(), hidden


def prompt_ids(index: int, tokens: int) -> torch.Tensor:
    """A caption prompt's length in tokens (~4 characters a token); ids are random, as the weights are."""
    text = build_caption_prompt(f"song {index}: warm lo-fi piano, vinyl crackle, soft drums, mellow bass",
                                build_metas(90, "4", "A minor", 180), TASK_INSTRUCTIONS["repaint"])
    length = max(tokens, len(text) // 4)
    return torch.randint(0, 151669, (1, length), generator=torch.Generator().manual_seed(index))


def timed(fn, repeat: int) -> float:
    fn()  # warm-up
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / repeat


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--samples", type=int, default=100, help="songs in the dataset")
    parser.add_argument("--tasks", type=int, default=2, help="tasks besides text2music (repaint, cover)")
    parser.add_argument("--tokens", type=int, default=120)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    started = time.perf_counter()
    model, hidden = text_encoder(args.size, args.device, dtype)
    projector = torch.nn.Linear(hidden, CONDITION_WIDTH, bias=False).to(args.device, dtype)
    load_s = time.perf_counter() - started
    ids = prompt_ids(0, args.tokens).to(args.device)

    @torch.no_grad()
    def encode():
        return projector(model(input_ids=ids).last_hidden_state[0]).float().cpu()

    encode_s = timed(encode, args.repeat)
    states = encode()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "shard.safetensors"
        save_file({f"s{i}": states.to(torch.bfloat16) for i in range(64)}, str(path))
        read_s = timed(lambda: load_file(str(path)), args.repeat) / 64
    params = sum(p.numel() for p in model.parameters()) + projector.weight.numel()
    held = args.samples * args.tasks * states.numel() * 4
    print(f"text encoder {args.size} ({params / 1e6:.1f} M parameters) on {args.device} {args.dtype}; "
          f"{ids.shape[1]} tokens a prompt")
    print(f"  load (build) the text encoder        {load_s:8.3f} s")
    print(f"  encode one caption + project          {encode_s * 1e3:8.2f} ms")
    print(f"  at start: {args.samples} songs x {args.tasks} tasks      {args.samples * args.tasks * encode_s:8.2f} s "
          f"once, {held / 2**20:.1f} MiB held (fp32, CPU)")
    print(f"  per step: encode each micro-batch     {encode_s * 1e3:8.2f} ms a sample, every step, "
          f"and {params * dtype.itemsize / 2**30:.2f} GiB of text encoder kept on {args.device}")
    print(f"  cached: read one sample's states      {read_s * 1e3:8.3f} ms a sample, every step, and "
          f"{args.samples * args.tasks * states.numel() * 2 / 2**20:.1f} MiB more cache (bf16)")


if __name__ == "__main__":
    main()
