"""The one source of truth for ACE-Step prompt text (training preprocessing and inference both use it).

Templates are facts quoted byte-exactly from the ACE-Step 1.5 release (spec model.md §7.1-7.2).
"""

from __future__ import annotations

DEFAULT_DIT_INSTRUCTION = "Fill the audio semantic mask based on the given conditions:"

# The instruction line of each task (spec model.md §7.1); extract and complete name no track here
# (the forms without {TRACK_NAME} / {TRACK_CLASSES}). "cover" is the string that sets `is_covers`.
TASK_INSTRUCTIONS = {
    "text2music": DEFAULT_DIT_INSTRUCTION,
    "repaint": "Repaint the mask area based on the given conditions:",
    "cover": "Generate audio semantic tokens based on the given conditions:",
    "extract": "Extract the track from the audio:",
    "complete": "Complete the input track:",
}

# Filled positionally with (instruction, caption, metas). Ends with a newline after <|endoftext|>.
SFT_GEN_PROMPT = "# Instruction\n{}\n\n# Caption\n{}\n\n# Metas\n{}<|endoftext|>\n"

# Filled positionally with (language, lyrics). No trailing newline.
LYRIC_PROMPT = "# Languages\n{}\n\n# Lyric\n{}<|endoftext|>"

INSTRUMENTAL_LYRICS = "[Instrumental]"


def build_metas(bpm: int | None, timesignature: str | None, keyscale: str | None, duration_s: float | None) -> str:
    """The four-line metas block; missing bpm/time signature/key read "N/A". The duration is whole seconds
    (int(), as upstream); an unknown duration is written "0 seconds" as Side-Step does (training.md §1.4),
    so callers should pass the source file's duration whenever they have it."""
    if duration_s is None:
        duration_s = 0
    return (
        f"- bpm: {bpm or 'N/A'}\n"
        f"- timesignature: {timesignature or 'N/A'}\n"
        f"- keyscale: {keyscale or 'N/A'}\n"
        f"- duration: {int(duration_s)} seconds\n"
    )


def build_caption_prompt(caption: str, metas: str, instruction: str = DEFAULT_DIT_INSTRUCTION) -> str:
    """The text-encoder input for the caption branch; a ':' is appended to the instruction if missing."""
    if not instruction.endswith(":"):
        instruction = instruction + ":"
    return SFT_GEN_PROMPT.format(instruction, caption, metas)


def with_instruction(prompt: str, instruction: str) -> str:
    """A caption prompt built with DEFAULT_DIT_INSTRUCTION, rebuilt with another task's instruction."""
    head = SFT_GEN_PROMPT.split("{}", 1)[0] + DEFAULT_DIT_INSTRUCTION
    if not prompt.startswith(head):
        raise ValueError("not a text2music caption prompt")
    return SFT_GEN_PROMPT.split("{}", 1)[0] + instruction + prompt[len(head):]


def build_lyric_text(lyrics: str, language: str) -> str:
    """The lyric-branch text; empty (or blank) lyrics become "[Instrumental]"."""
    text = lyrics if lyrics.strip() else INSTRUMENTAL_LYRICS
    return LYRIC_PROMPT.format(language or "unknown", text)
