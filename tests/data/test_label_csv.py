"""Label CSVs: acetune's, the ACE-Step app's (sniffed delimiter, File column) and ace-lora-trainer's (path)."""

from __future__ import annotations

from pathlib import Path

import pytest

from acetune.data.label_csv import match_csv_rows, read_label_csv
from acetune.data.labels import SampleLabels
from acetune.errors import LabelError


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def test_rows_aliases_and_multiline_cells(tmp_path):
    table = read_label_csv(_write(tmp_path / "labels.csv",
                                  'Filename,caption,key,bpm,lyrics\na.wav,one,C major,120,"la\nla"\n\nb.flac,two,,,\n'))
    assert [(r.filename, r.line) for r in table.rows] == [("a.wav", 2), ("b.flac", 5)]
    assert table.rows[0].labels() == SampleLabels(caption="one", keyscale="C major", bpm=120, lyrics="la\nla")
    assert table.rows[1].values == {"caption": "two"} and table.notes == []


@pytest.mark.parametrize("delimiter", [";", "\t", ","])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_ace_step_app_csv(tmp_path, delimiter, encoding):
    rows = [["File", "BPM", "Key", "Caption", "Rating"], ["歌曲.wav", "120", "D major", "柔和, piano", "5"],
            ["b.wav", "96.0", "", "dark; slow", ""]]
    text = "".join(delimiter.join(f'"{c}"' if delimiter in c or "," in c else c for c in row) + "\r\n" for row in rows)
    table = read_label_csv(_write(tmp_path / "metadata.csv", text, encoding))
    assert [r.filename for r in table.rows] == ["歌曲.wav", "b.wav"]
    assert table.rows[0].labels() == SampleLabels(bpm=120, keyscale="D major", caption="柔和, piano",
                                                  extra={"rating": "5"})
    assert table.rows[1].labels() == SampleLabels(bpm=96, caption="dark; slow")
    assert table.notes == ["column 'Rating' is not a label acetune uses: kept as extra fields of each song "
                           "(they do not change training)"]


def test_semicolons_with_long_quoted_lyrics(tmp_path):
    lyrics = "\n".join("oh, baby, oh" for _ in range(1000))  # sniffing the data rows would say "comma"
    text = f'File;Caption;Lyrics\na.wav;warm;"{lyrics}"\nb.wav;cold, soft;\n'
    table = read_label_csv(_write(tmp_path / "m.csv", text))
    assert [r.values.get("caption") for r in table.rows] == ["warm", "cold, soft"]
    assert table.rows[0].values["lyrics"] == lyrics and table.rows[1].line == 1002


def test_ace_lora_trainer_csv(tmp_path):
    text = ("filename,path,caption,bpm,keyscale,timesignature,duration,genre,language,lyrics\n"
            r"a.wav,C:\Users\me\songs\a.wav,bright pop,128,D Minor,4,31,pop,English,[Instrumental]" "\n"
            "b.wav,/home/me/songs/b.wav,,,,,29,,unknown,\n")
    table = read_label_csv(_write(tmp_path / "captions.csv", text))
    assert table.notes == []  # path is a location column, not an extra label
    notes: list[str] = []
    assert table.rows[0].labels(notes) == SampleLabels(caption="bright pop", bpm=128, keyscale="D Minor",
                                                       timesignature="4", duration=31, genre="pop", language="en",
                                                       lyrics="[Instrumental]")
    assert notes == [] and table.rows[1].labels() == SampleLabels(duration=29)
    assert [r.filename for r in table.rows] == ["a.wav", "b.wav"]  # filename wins over path


@pytest.mark.parametrize(("text", "message"), [
    ("caption,bpm\nx,1\n", "no filename, File or path column"),
    ("filename,key,keyscale\na.wav,C major,C major\n", "keyscale more than once"),
    ("File,filename\na.wav,a.wav\n", "both a File and a filename column"),
    ("filename,caption\na.wav,x\nb.wav,y\na.wav,z\n", r"'a.wav' is labelled twice, in rows 2 and 4"),
    ("filename,caption\na.wav,x,extra\n", "row 2 has 3 cells but the header has 2"),
    ("filename,caption\n,x\n", "row 2 names no file"),
    ("", "label CSV is empty"),
])
def test_malformed_csvs_name_the_file(tmp_path, text, message):
    path = _write(tmp_path / "labels.csv", text)
    with pytest.raises(LabelError, match=message) as err:
        read_label_csv(path)
    assert str(path) in str(err.value) and "fix:" in str(err.value)


def test_matching_rows_to_songs(tmp_path):
    root = tmp_path / "songs"
    songs = [_write(root / name, "") for name in ("a.wav", "b.flac", "deep/c.wav", "x/d.wav", "y/d.wav", "e.mp3")]
    text = ("filename,path,caption\n"
            "a.wav,,by name\n"
            "b,,by stem\n"
            r",C:\old\machine\e.mp3,by the name in a Windows path" "\n"
            "c.wav,,by unique name below the CSV\n"
            "d.wav,,ambiguous\n"
            f",{root / 'x' / 'd.wav'},by an absolute path inside the folder\n"
            "ghost.wav,,missing\n")
    table = read_label_csv(_write(root / "labels.csv", text))
    matched, problems = match_csv_rows(root, [table], songs)
    assert {p.relative_to(root).as_posix(): r.values["caption"] for p, r in matched.items()} == {
        "a.wav": "by name", "b.flac": "by stem", "e.mp3": "by the name in a Windows path",
        "deep/c.wav": "by unique name below the CSV", "x/d.wav": "by an absolute path inside the folder"}
    assert [p.reason for p in problems] == ["row 6: 'd.wav' matches 2 songs; write its path (row ignored)",
                                            "row 8: 'ghost.wav' does not exist (row ignored)"]


def test_a_csv_in_a_subfolder_does_not_reach_songs_beside_it(tmp_path):
    root = tmp_path / "songs"
    songs = [_write(root / "a.wav", ""), _write(root / "sub" / "b.wav", "")]
    table = read_label_csv(_write(root / "sub" / "labels.csv", "File,Caption\na.wav,x\nb.wav,y\n"))
    matched, problems = match_csv_rows(root, [table], songs)
    assert [p.name for p in matched] == ["b.wav"] and "'a.wav' does not exist" in problems[0].reason
