"""The Preprocess page's row per song, read from `acetune preprocess`'s plain output."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from acetune.cli.progress import render
from acetune.events import Finished, Progressed, Skipped, Started
from acetune.ui.song_progress import overall_html, rows_html, song_rows

FOLDER = Path("/songs")
SONGS = [("a.wav", ""), ("sub/b.wav", ""), ("c.wav", ""), ("d.wav", ""), ("e.mp3", "skipped: not valid JSON")]


def printed(*events) -> str:
    """What the CLI prints for these events when its output is not a terminal (what the app reads)."""
    console = Console(record=True, force_terminal=False, width=120, soft_wrap=True)
    with console.capture() as capture:
        render(events, console)
    return capture.get()


def test_rows_follow_the_commands_events_song_by_song():
    stdout = printed(Started("preprocess", 3), Progressed(1, 3, "a.wav"),
                     Skipped(FOLDER / "sub/b.wav", "cannot decode: bad header"), Progressed(2, 3, "sub/b.wav"))
    rows = {r.song: r for r in song_rows(SONGS, FOLDER, stdout, passes=1, ended=False, ok=False)}
    assert (rows["a.wav"].status, rows["a.wav"].fraction) == ("done", 1.0)
    assert (rows["sub/b.wav"].status, rows["sub/b.wav"].reason) == ("skipped", "cannot decode: bad header")
    assert rows["c.wav"].status == rows["d.wav"].status == "waiting"
    assert (rows["e.mp3"].status, rows["e.mp3"].reason) == ("skipped", "skipped: not valid JSON")  # the scan's
    assert overall_html(stdout).startswith('<progress max="3" value="2"') and "2/3: sub/b.wav" in overall_html(stdout)
    assert overall_html(printed(Started("preprocess", 3))) == ""  # nothing done yet
    html = rows_html(list(rows.values()))
    assert html.count("<tr class=") == 5 and "cannot decode: bad header" in html


def test_two_passes_count_twice_and_an_ended_run_names_what_it_did_not_touch():
    events = [Started("preprocess", 4), Progressed(1, 4, "a.wav"), Progressed(2, 4, "c.wav"),
              Progressed(3, 4, "a.wav")]
    stdout = printed(*events)
    rows = {r.song: r for r in song_rows(SONGS[:4], FOLDER, stdout, passes=2, ended=False, ok=False)}
    assert (rows["a.wav"].status, rows["c.wav"].status) == ("done", "pass 1 of 2 done")
    assert rows["c.wav"].fraction == 0.5
    stdout = printed(*events, Progressed(4, 4, "c.wav"), Finished("preprocess", "complete", {}))
    rows = {r.song: r for r in song_rows(SONGS[:4], FOLDER, stdout, passes=2, ended=True, ok=True)}
    assert rows["c.wav"].status == "done" and rows["d.wav"].status == "cached before"  # reused: not in the work
    rows = {r.song: r for r in song_rows(SONGS[:4], FOLDER, stdout, passes=2, ended=True, ok=False)}
    assert rows["d.wav"].status == "not done"
