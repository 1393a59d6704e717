"""`dataset list`: whole file names piped (tab-separated) and on a terminal of any width."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

from rich.console import Console

from acetune.cli.song_list import COLUMNS, fitting_columns, print_song_list
from acetune.data.labels import SampleLabels

LONG = "a rather long folder name with songs/and a subfolder/the_song_with_a_long_name.wav"


def _samples(root: Path):
    labels = SampleLabels(caption="warm lo-fi piano with tape hiss and soft brushed drums", bpm=84,
                          keyscale="F# minor", timesignature="4")
    return [SimpleNamespace(relative=LONG, labels=labels, audio_path=root / LONG,
                            label_sources=(root / LONG.replace(".wav", ".json"),))]


def _render(width: int, terminal: bool, root: Path) -> str:
    out = io.StringIO()
    print_song_list(Console(file=out, width=width, force_terminal=terminal, color_system=None), _samples(root))
    return out.getvalue()


def test_piped_output_is_tab_separated_and_whole(tmp_path):
    lines = _render(60, False, tmp_path).splitlines()
    assert lines[0].split("\t") == [c.header for c in COLUMNS]
    fields = lines[1].split("\t")
    assert fields[0] == LONG and fields[1].endswith("soft brushed drums") and fields[2] == "84"
    assert fields[-1] == LONG.replace(".wav", ".json")


def test_a_60_column_terminal_keeps_whole_file_names_and_fits(tmp_path):
    text = _render(60, True, tmp_path)
    assert all(len(line) <= 60 for line in text.splitlines())
    joined = "".join(part.split("│")[1].strip() for part in text.splitlines()[3:-1])
    assert joined.replace(" ", "") == LONG.replace(" ", "")  # wrapped over lines, never cut
    assert "84" in text


def test_wider_terminals_show_more_columns():
    assert [c.header for c in fitting_columns(60)][:2] == ["file", "caption"]
    assert len(fitting_columns(60)) < len(fitting_columns(100)) <= len(fitting_columns(200)) == len(COLUMNS)
