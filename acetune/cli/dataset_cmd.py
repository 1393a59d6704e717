"""`acetune dataset ...`: list, edit, import/export, split and analyze labelled song folders."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from acetune.cli.label_cmd import label_command
from acetune.cli.song_list import print_song_list
from acetune.cli.text import printable, printable_lines
from acetune.data.captions import TAG_POSITIONS, TagConfig, select_caption
from acetune.data.labels import KEY_ALIASES, SampleLabels
from acetune.data.machine_labels import RUNS_KEY, SOURCES_KEY, finished_runs, forget_sources, value_sources
from acetune.data.sidecars import json_sidecar_path, read_json_sidecar, replace_json_sidecar
from acetune.errors import ConfigError, LabelError
from acetune.events import Event, Finished, Skipped

if TYPE_CHECKING:
    from acetune.data.dataset import DatasetSample
    from acetune.data.findings import Notice, Problem

app = typer.Typer(help="Label and inspect song folders.", no_args_is_help=True)

_DIR = typer.Argument(..., help="Song folder (scanned recursively).")


def _console() -> Console:
    return Console(soft_wrap=True, highlight=False)


def _print_problems(console: Console, problems: Iterable[Problem]) -> None:
    _print_listed(console, "problem(s)", [(p.path, p.reason) for p in problems])


def _print_notices(console: Console, notices: Iterable[Notice]) -> None:
    _print_listed(console, "notice(s) (the songs are used)", [(n.path, n.text) for n in notices])


def _print_listed(console: Console, heading: str, rows: list[tuple[Path, str]]) -> None:
    if rows:
        console.print(f"[yellow]{len(rows)} {heading}:[/]")
        for path, text in rows:
            console.print(f"  [yellow]{printable(str(path))}[/]: {printable(text)}")


@app.command("list")
def list_(folder: Path = _DIR) -> None:
    """A table of the songs and their labels; songs whose labels are broken are listed after it."""
    from acetune.data.dataset import scan_dataset

    result = scan_dataset(folder)
    root = result.dataset.root
    console = _console()
    print_song_list(console, result.dataset.samples)
    console.print(f"{len(result.dataset.samples)} song(s) in {printable(str(root))}")
    _print_problems(console, result.problems)
    _print_notices(console, result.notices + result.dataset.uncaptioned())


@app.command("show")
def show(folder: Path = _DIR, file: str = typer.Argument(..., help="Song, by its path inside the folder.")) -> None:
    """Every label of one song, where each came from, and the prompt text it gives."""
    from acetune.data.dataset import locate_audio, scan_dataset

    result = scan_dataset(folder)
    path = locate_audio(folder, file)
    for problem in result.problems:
        if problem.path == path:
            raise LabelError(problem.reason, path=path)
    sample = result.dataset.find(path)
    _print_sample(_console(), sample, result.dataset.root)


def _print_sample(console: Console, sample: DatasetSample, root: Path) -> None:
    from acetune.data.preprocess import sample_texts

    labels = sample.labels
    console.print(f"[bold]{printable(sample.relative)}[/]")
    sources = ", ".join(p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p)
                        for p in sample.label_sources)
    console.print(f"label sources: {printable(sources) or '(none)'}")
    machine = value_sources(labels)
    for key, value in labels.to_dict(full=True).items():
        if key not in ("lyrics",) and key not in labels.extra:
            origin = f" [dim](from {printable(machine[key])})[/]" if key in machine else ""
            console.print(f"{key}: {printable(json.dumps(value, ensure_ascii=False))}{origin}")
    for key, value in labels.extra.items():
        if key not in (SOURCES_KEY, RUNS_KEY):
            console.print(f"{key} [dim](extra)[/]: {printable(json.dumps(value, ensure_ascii=False))}")
    if finished_runs(labels):
        console.print(f"auto-labelled by: {printable(', '.join(finished_runs(labels)))}")
    origin = f" [dim](from {printable(machine['lyrics'])})[/]" if "lyrics" in machine else ""
    console.print(f"lyrics:{origin}" if labels.lyrics else "lyrics: (none: instrumental)")
    if labels.lyrics:
        console.print(printable_lines(labels.lyrics))
    prompt, lyric_text = sample_texts(sample, select_caption(labels, 0, set(), TagConfig()))
    console.print("[bold]caption prompt[/] (no dataset tag):")
    console.print(printable_lines(prompt), end="")
    console.print("[bold]lyric text:[/]")
    console.print(printable_lines(lyric_text))


def _parse_assignments(pairs: list[str]) -> dict[str, object]:
    """`KEY=VALUE`: the value is read as JSON when it parses (120, true, null, "x"), else as plain text."""
    out: dict[str, object] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r} is not KEY=VALUE", fix="write e.g. --set mood=dark")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        key = key.strip()
        out[KEY_ALIASES.get(key, key)] = value
    return out


@app.command("edit")
def edit(
    folder: Path = _DIR,
    file: str = typer.Argument(..., help="Song, by its path inside the folder."),
    caption: str = typer.Option(None, help="Caption text."),
    lyrics: str = typer.Option(None, help="Lyrics (empty: instrumental)."),
    genre: str = typer.Option(None, help="Genre text."),
    bpm: int = typer.Option(None, help="Tempo, whole beats per minute."),
    key: str = typer.Option(None, help='Key, e.g. "F# minor".'),
    time_signature: str = typer.Option(None, help='Beats per bar, e.g. "4" or "3/4".'),
    language: str = typer.Option(None, help="Vocal language code (en, de, ja, ..., unknown)."),
    custom_tag: str = typer.Option(None, help="Activation tag for this song."),
    instrumental: bool = typer.Option(None, "--instrumental/--not-instrumental", help="Mark (not) instrumental."),
    prompt_override: str = typer.Option(None, help="Always use the caption or the genre: caption, genre or none."),
    set_: list[str] = typer.Option([], "--set", help="KEY=VALUE (value read as JSON if it parses); repeatable."),
    unset: list[str] = typer.Option([], "--unset", help="Remove KEY from the song's JSON sidecar; repeatable."),
) -> None:
    """Change labels in the song's JSON sidecar (created if missing). Other keys in it are kept; audio is
    never touched; a changed value counts as yours (`dataset label` keeps it). Note that an empty value here
    lets a caption.txt/CSV value show through."""
    from acetune.data.dataset import locate_audio

    path = locate_audio(folder, file)
    sidecar = json_sidecar_path(path)
    current = read_json_sidecar(sidecar) if sidecar.exists() else SampleLabels()
    options = {"caption": caption, "lyrics": lyrics, "genre": genre, "bpm": bpm, "keyscale": key,
               "timesignature": time_signature, "language": language, "custom_tag": custom_tag,
               "is_instrumental": instrumental}
    changes: dict[str, object] = {k: v for k, v in options.items() if v is not None}
    if prompt_override is not None:
        if prompt_override not in ("caption", "genre", "none"):
            raise ConfigError(f"--prompt-override {prompt_override!r} is not caption, genre or none",
                              fix="write --prompt-override caption, genre or none")
        changes["prompt_override"] = None if prompt_override == "none" else prompt_override
    changes.update(_parse_assignments(set_))
    if not changes and not unset:
        raise LabelError("nothing to change", path=path,
                         fix="pass a label option such as --caption, or --set KEY=VALUE")
    data = {**current.to_dict(), **changes}
    for key in unset:
        data.pop(KEY_ALIASES.get(key, key), None)
    updated = forget_sources(SampleLabels.from_dict(data, source=sidecar), set(changes) | set(unset))
    written = replace_json_sidecar(path, updated)
    console = _console()
    console.print(f"wrote [bold]{printable(str(written))}[/]")
    for key in sorted(set(changes) | set(unset)):
        console.print(f"  {key}: {printable(json.dumps(updated.to_dict(full=True).get(key), ensure_ascii=False))}")


@app.command("export")
def export(
    folder: Path = _DIR,
    out: Path = typer.Argument(..., help="Dataset JSON file to write."),
    tag: str = typer.Option("", help="Dataset activation tag (a song's custom_tag replaces it)."),
    tag_position: str = typer.Option("prepend", help=f"Where the tag goes: {', '.join(TAG_POSITIONS)}."),
    genre_ratio: int = typer.Option(0, min=0, max=100, help="Percent of songs that use their genre as caption."),
    overwrite: bool = typer.Option(False, help="Replace OUT if it exists."),
) -> None:
    """Write the folder as an ACE-Step / Side-Step dataset JSON."""
    from acetune.data.dataset import scan_dataset
    from acetune.data.dataset_json import write_dataset_json

    result = scan_dataset(folder, tag=TagConfig(tag, tag_position), genre_ratio=genre_ratio)
    if not result.dataset.samples:
        _print_problems(_console(), result.problems)
        raise LabelError("no song has usable labels, nothing to export", path=folder, fix="fix the problems above")
    written = write_dataset_json(result.dataset, out, overwrite=overwrite)
    console = _console()
    console.print(f"wrote {len(result.dataset.samples)} song(s) to [bold]{printable(str(written))}[/]")
    _print_problems(console, result.problems)
    _print_notices(console, result.notices + result.dataset.uncaptioned())


@app.command("import")
def import_(
    json_file: Path = typer.Argument(..., help="Dataset JSON (app / Side-Step format)."),
    folder: Path = _DIR,
    overwrite: bool = typer.Option(False, help="Replace label values the songs already have."),
) -> None:
    """Write a dataset JSON's labels into JSON sidecars beside the songs in the folder."""
    from acetune.data.dataset_json import import_dataset_json

    report = import_dataset_json(json_file, folder, overwrite=overwrite)
    console = _console()
    console.print(f"wrote {len(report.written)} sidecar(s) in [bold]{printable(str(report.dataset.root))}[/]")
    tag = report.dataset.tag
    if tag.tag or report.dataset.genre_ratio:
        console.print(f"note: the JSON's dataset tag {tag.tag!r} ({tag.position}) and genre ratio "
                      f"{report.dataset.genre_ratio} are not stored in the folder; pass them as options when you "
                      "export or preprocess")
    _print_problems(console, report.problems)
    _print_notices(console, report.notices)


def _render(console: Console, events: Iterable[Event], root: Path) -> None:
    from acetune.data.folder_jobs import Analyzed, SplitWritten

    for event in events:
        match event:
            case SplitWritten(path=path, pieces=pieces):
                console.print(f"{printable(path.relative_to(root).as_posix())}: {len(pieces)} piece(s)")
            case Analyzed(path=path, estimates=found, written=written):
                values = ", ".join(f"{k} {v}" for k, v in found.items() if v is not None)
                kept = f"wrote {', '.join(written)}" if written else "kept every existing value"
                console.print(f"{printable(path.relative_to(root).as_posix())}: {printable(values)} ({kept})")
            case Skipped(path=path, reason=reason):
                console.print(f"[yellow]skipped[/] {printable(str(path))}: {printable(reason)}")
            case Finished(job=job, summary=summary):
                console.print(f"{job}: " + ", ".join(f"{k} {v}" for k, v in summary.items()))


@app.command("split")
def split(
    folder: Path = _DIR,
    out: Path = typer.Argument(..., help="Folder for the pieces (outside the song folder)."),
    segment: float = typer.Option(30.0, min=0.1, help="Piece length in seconds."),
    min_segment: float = typer.Option(None, help="Drop a last piece shorter than this (default: 10 s, or --segment "
                                                 "if shorter)."),
    overwrite: bool = typer.Option(False, help="Replace pieces left by an earlier split."),
) -> None:
    """Cut every song into pieces (48 kHz; .flac stays .flac, anything else becomes .wav), each with a JSON
    sidecar holding the song's labels. The song folder is never written to."""
    from acetune.data.dataset import scan_dataset
    from acetune.data.folder_jobs import split_dataset

    min_segment = min(10.0, segment) if min_segment is None else min_segment
    if not 0 < min_segment <= segment:
        raise ConfigError(f"--min-segment {min_segment:g} must be above 0 and at most --segment ({segment:g})",
                          fix=f"write e.g. --min-segment {min(10.0, segment):g}")
    result = scan_dataset(folder)
    console = _console()
    _print_problems(console, result.problems)
    _render(console, split_dataset(result.dataset, out, segment_s=segment, min_segment_s=min_segment,
                                   overwrite=overwrite), result.dataset.root)


@app.command("analyze")
def analyze(
    folder: Path = _DIR,
    overwrite: bool = typer.Option(False, help="Replace bpm/key/time signature/duration the songs already have."),
) -> None:
    """Estimate bpm, key, time signature and duration and merge them into the songs' JSON sidecars."""
    from acetune.data.dataset import scan_dataset
    from acetune.data.folder_jobs import analyze_dataset

    result = scan_dataset(folder)
    console = _console()
    _print_problems(console, result.problems)
    _render(console, analyze_dataset(result.dataset, overwrite=overwrite), result.dataset.root)


app.command("label")(label_command)
