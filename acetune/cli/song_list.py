"""`acetune dataset list`'s table: whole file names always; as many label columns as the terminal holds.

Piped (not a terminal) it prints tab-separated columns with a header and every value whole, for
`grep`, `cut` and spreadsheets. On a terminal, columns are dropped from the least useful end until
the table fits; file names wrap rather than being cut.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from acetune.data.labels import SampleLabels

# padding and borders rich adds per column; a column needs its width plus this
_COLUMN_OVERHEAD = 3


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[object], str]  # DatasetSample -> text
    width: int  # what it needs on a terminal to be readable


def _labels(sample) -> SampleLabels:
    return sample.labels


def _text(value: object) -> str:
    return "" if value is None or value == "" else " ".join(str(value).split())


COLUMNS = (  # most useful first: a narrow terminal keeps a prefix of this list (file and caption always)
    Column("file", lambda s: s.relative, 24),
    Column("caption", lambda s: _text(_labels(s).caption), 20),
    Column("bpm", lambda s: _text(_labels(s).bpm), 3),
    Column("key", lambda s: _text(_labels(s).keyscale), 8),
    Column("time sig.", lambda s: _text(_labels(s).timesignature), 4),
    Column("duration", lambda s: "" if _labels(s).duration is None else f"{_labels(s).duration} s", 5),
    Column("genre", lambda s: _text(_labels(s).genre), 10),
    Column("label sources", lambda s: ", ".join(_inside(p, s) for p in s.label_sources) or "-", 16),
)


def _inside(path, sample) -> str:
    """A label file's path from the dataset root (the root is where the sample's relative path starts)."""
    root = sample.audio_path.parents[len(sample.relative.split("/")) - 1]
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def print_song_list(console: Console, samples) -> None:
    if not console.is_terminal:  # written as is: rich would expand the tabs into spaces
        lines = ["\t".join(c.header for c in COLUMNS)]
        lines += ["\t".join(c.value(sample).replace("\t", " ") for c in COLUMNS) for sample in samples]
        console.file.write("\n".join(lines) + "\n")
        return
    columns = fitting_columns(console.width)
    rows = [[c.value(sample) for c in columns] for sample in samples]
    table = Table(*(c.header for c in columns), expand=False)
    file_width, caption_width = _shares(console.width, columns, max((len(r[0]) for r in rows), default=4))
    table.columns[0].overflow, table.columns[0].min_width = "fold", file_width  # a file name wraps, never cut
    table.columns[1].max_width = caption_width
    for column in table.columns[1:]:
        column.overflow, column.no_wrap = "ellipsis", True
    for row in rows:
        table.add_row(*map(escape, row))
    console.print(table)


def _shares(width: int, columns: tuple[Column, ...], longest_file: int) -> tuple[int, int]:
    """Widths of the file and caption columns: the rest of the row goes to them, file names first."""
    rest = sum(c.width + _COLUMN_OVERHEAD for c in columns[2:])
    available = max(width - rest - 2 * _COLUMN_OVERHEAD - 1, 2 * 8)
    file_width = min(longest_file, max(COLUMNS[0].width, available * 2 // 3))
    return file_width, max(available - file_width, 8)


def fitting_columns(width: int) -> tuple[Column, ...]:
    """The longest prefix of COLUMNS whose readable widths fit `width` (file and caption at least)."""
    kept = 2
    while kept < len(COLUMNS) and sum(c.width + _COLUMN_OVERHEAD for c in COLUMNS[:kept + 1]) + 1 <= width:
        kept += 1
    return COLUMNS[:kept]
