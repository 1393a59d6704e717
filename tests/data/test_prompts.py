"""Prompt text is byte-exact (model.md §7.1-7.2)."""

from __future__ import annotations

from acetune.data.prompts import (
    DEFAULT_DIT_INSTRUCTION,
    INSTRUMENTAL_LYRICS,
    LYRIC_PROMPT,
    SFT_GEN_PROMPT,
    build_caption_prompt,
    build_lyric_text,
    build_metas,
)


def test_templates_are_byte_exact():
    assert SFT_GEN_PROMPT == "# Instruction\n{}\n\n# Caption\n{}\n\n# Metas\n{}<|endoftext|>\n"
    assert LYRIC_PROMPT == "# Languages\n{}\n\n# Lyric\n{}<|endoftext|>"
    assert DEFAULT_DIT_INSTRUCTION == "Fill the audio semantic mask based on the given conditions:"
    assert INSTRUMENTAL_LYRICS == "[Instrumental]"


def test_metas_block():
    assert build_metas(120, "4", "F# minor", 183.9) == (
        "- bpm: 120\n- timesignature: 4\n- keyscale: F# minor\n- duration: 183 seconds\n")
    assert build_metas(None, None, None, 30) == (
        "- bpm: N/A\n- timesignature: N/A\n- keyscale: N/A\n- duration: 30 seconds\n")
    assert build_metas(None, None, None, None).endswith("- duration: 0 seconds\n")


def test_caption_prompt_exact():
    metas = build_metas(90, "3", "C major", 12)
    assert build_caption_prompt("zx, lofi piano", metas) == (
        "# Instruction\nFill the audio semantic mask based on the given conditions:\n\n"
        "# Caption\nzx, lofi piano\n\n"
        "# Metas\n- bpm: 90\n- timesignature: 3\n- keyscale: C major\n- duration: 12 seconds\n<|endoftext|>\n")


def test_instruction_gets_a_colon():
    text = build_caption_prompt("c", "m", instruction="Repaint the mask area based on the given conditions")
    assert text.startswith("# Instruction\nRepaint the mask area based on the given conditions:\n\n# Caption\nc\n")
    assert build_caption_prompt("c", "m", instruction="Do it:").startswith("# Instruction\nDo it:\n")


def test_lyric_text():
    assert build_lyric_text("[Verse]\nla la", "en") == "# Languages\nen\n\n# Lyric\n[Verse]\nla la<|endoftext|>"
    assert build_lyric_text("", "unknown") == "# Languages\nunknown\n\n# Lyric\n[Instrumental]<|endoftext|>"
    assert build_lyric_text("  \n", "de") == "# Languages\nde\n\n# Lyric\n[Instrumental]<|endoftext|>"
