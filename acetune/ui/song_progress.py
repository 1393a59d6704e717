"""The Preprocess page's per-song progress: one row per song of the folder, read from the command's output.

`acetune preprocess` renders its events (Progressed per song, Skipped with the reason) as plain
lines when its output is not a terminal: `[3/6] song.wav` and `skipped /abs/song.wav: reason`
(acetune/cli/progress.py). The page reads those lines, the same way a script would, so the
command line stays the one contract; in two passes every song is counted once per pass.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_COUNTER = re.compile(r"^\[(\d+)/(\d+)\] (.*)$")  # the CLI's plain progress line: "[3/6] song.wav"
WAITING, DONE, SKIPPED = "waiting", "done", "skipped"


@dataclass(frozen=True)
class SongRow:
    song: str  # relative to the songs folder, as the cache names it
    status: str  # waiting | done | skipped | pass 1 of 2 done | cached before | not done
    reason: str = ""  # why it was skipped
    fraction: float = 0.0  # of its work (both passes) done


def song_rows(songs: list[tuple[str, str]], folder: Path, stdout: str, *, passes: int, ended: bool,
              ok: bool) -> list[SongRow]:
    """A row per song: `songs` is (relative name, problem) from the folder's scan (a problem keeps a song out),
    `stdout` the command's output so far; `ended` / `ok`: whether it ended, and without failing."""
    lines = stdout.splitlines()
    counts = Counter(m[3] for m in map(_COUNTER.match, lines) if m)
    rows = []
    for name, problem in songs:
        if problem:
            rows.append(SongRow(name, SKIPPED, problem, 1.0))
            continue
        prefix = f"skipped {folder / name}: "
        reason = next((line[len(prefix):] for line in lines if line.startswith(prefix)), None)
        done = min(counts[name], passes)
        if reason is not None:
            rows.append(SongRow(name, SKIPPED, reason, 1.0))
        elif done == passes:
            rows.append(SongRow(name, DONE, fraction=1.0))
        elif done:
            rows.append(SongRow(name, f"pass {done} of {passes} done", fraction=done / passes))
        elif ended:  # never worked on: unchanged since the last run (reused), or the command stopped first
            rows.append(SongRow(name, "cached before" if ok else "not done", fraction=1.0 if ok else 0.0))
        else:
            rows.append(SongRow(name, WAITING))
    return rows


def overall_html(stdout: str) -> str:
    """A bar for the latest `[done/total] item` line, and the item it names."""
    matches = [m for m in map(_COUNTER.match, stdout.splitlines()) if m]
    if not matches:
        return ""
    done, total, item = int(matches[-1][1]), int(matches[-1][2]), matches[-1][3]
    return (f'<progress max="{total}" value="{done}" style="width:100%"></progress>'
            f"<div>{done}/{total}: {html.escape(item)}</div>")


def rows_html(rows: list[SongRow]) -> str:
    """The rows as a table with a small bar each (narrow enough for a phone: names wrap)."""
    body = "".join(
        f'<tr class="song-{"skipped" if r.status == SKIPPED else "row"}"><td style="word-break:break-all">'
        f"{html.escape(r.song)}</td><td>{html.escape(r.status)}"
        f"{': ' + html.escape(r.reason) if r.reason else ''}</td>"
        f'<td><progress max="1" value="{r.fraction:g}" style="width:100%"></progress></td></tr>' for r in rows)
    return ('<table id="pre-songs-table" style="width:100%;table-layout:fixed"><thead><tr><th>song</th>'
            f"<th>status</th><th style=\"width:25%\">progress</th></tr></thead><tbody>{body}</tbody></table>")
