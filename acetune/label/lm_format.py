"""What the 5 Hz LM reads and writes in "understand" mode: the prompt, the audio-code tokens, the answer.

Facts (from ace-step/ACE-Step-1.5: `acestep/constants.py`, and the LLM handler's
`build_formatted_prompt_for_understanding`, `parse_lm_output` and `_extract_lyrics_from_output`; written
up in docs/labels.md, "The 5 Hz LM in understand mode"):
- The prompt is the LM tokenizer's own chat template over two messages, with the generation prompt added:
  system `"# Instruction\\n" + UNDERSTAND_INSTRUCTION + "\\n\\n"`, user = the audio codes.
- A 5 Hz FSQ code index N (0..63999) is the token `<|audio_code_N|>`; the codes are written one after
  another with no separator.
- The answer is a reasoning block `<think> ... </think>` holding `key: value` lines (bpm, caption, duration,
  genres, keyscale, language, timesignature; a value may go on over indented continuation lines), then the
  lyrics, optionally under a `# Lyric` header, ending with `<|im_end|>`. Some write-ups show the same block
  as `# Header` / value paragraphs (`# BPM`, `# Vocal Language`); both forms are read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

UNDERSTAND_INSTRUCTION = "Understand the given musical conditions and describe the audio semantics accordingly:"
SYSTEM_MESSAGE = f"# Instruction\n{UNDERSTAND_INSTRUCTION}\n\n"
CODE_TOKEN = "<|audio_code_{}|>"
END_OF_TURN = "<|im_end|>"

# The LM's metadata keys -> our label fields. "duration" is read but not kept: the file's length is exact.
_KEYS = {"bpm": "bpm", "caption": "caption", "genres": "genre", "genre": "genre", "keyscale": "keyscale",
         "key": "keyscale", "language": "language", "vocal language": "language", "vocal_language": "language",
         "timesignature": "timesignature", "time signature": "timesignature", "duration": "duration"}
_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_LYRIC_HEADER = re.compile(r"^#\s*lyrics?\s*\n", re.IGNORECASE)
_HEADER = re.compile(r"^#\s*(.+?)\s*$")


def code_tokens(codes: Iterable[int]) -> str:
    """FSQ indices -> the user message: `<|audio_code_12|><|audio_code_7|>...`."""
    return "".join(CODE_TOKEN.format(int(c)) for c in codes)


def understand_messages(codes: Iterable[int]) -> list[dict[str, str]]:
    """The two chat messages of the understand prompt (the tokenizer's chat template renders them)."""
    return [{"role": "system", "content": SYSTEM_MESSAGE}, {"role": "user", "content": code_tokens(codes)}]


def parse_answer(text: str) -> dict[str, str]:
    """The LM's answer -> raw field values (strings, unchecked: see `fields.check_values`).

    Lyrics are what follows `</think>`. Without a reasoning block the whole answer is read as metadata."""
    match = _THINK.search(text)
    block = match.group(1) if match else text.split(END_OF_TURN)[0]
    values = _read_block(block)
    if match:
        lyrics = _LYRIC_HEADER.sub("", text[match.end():].strip()).split(END_OF_TURN)[0].strip()
        if lyrics:
            values["lyrics"] = lyrics
    values.pop("duration", None)
    return values


def _read_block(block: str) -> dict[str, str]:
    """`key: value` lines (indented lines continue a value) and `# Key` headers followed by value lines."""
    values: dict[str, list[str]] = {}
    current: str | None = None
    for line in block.splitlines():
        stripped = line.strip()
        header = _HEADER.match(stripped)
        if header and header.group(1).lower() in _KEYS:
            current = _KEYS[header.group(1).lower()]
            values[current] = []
        elif line and not line[0].isspace() and ":" in line and line.split(":", 1)[0].strip().lower() in _KEYS:
            key, rest = line.split(":", 1)
            current = _KEYS[key.strip().lower()]
            values[current] = [rest.strip()] if rest.strip() else []
        elif current is not None and stripped and not stripped.startswith("<"):
            values[current].append(stripped)
        elif not stripped and current is not None and values[current]:
            current = None if not line.startswith((" ", "\t")) else current
    return {key: " ".join(parts).strip() for key, parts in values.items() if " ".join(parts).strip()}
