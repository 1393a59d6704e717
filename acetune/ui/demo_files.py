"""The first-run button: tiny random checkpoints and synthesized songs, built as `acetune demo` builds them."""

from __future__ import annotations

from pathlib import Path

DEMO_FOLDER = "acetune-demo"


def build_demo_files(root: Path) -> tuple[Path, Path]:
    """`<root>/acetune-demo/checkpoints` (official layout, tiny) and `.../songs`; kept when they exist."""
    from acetune.data.demo_songs import write_demo_songs
    from acetune.model.tiny_bundle import write_tiny_bundle

    folder = root / DEMO_FOLDER
    checkpoints, song_folder = folder / "checkpoints", folder / "songs"
    if not checkpoints.is_dir():
        write_tiny_bundle(checkpoints, lm=True)  # as `acetune demo`: with the tiny 5 Hz LM for labelling
    if not song_folder.is_dir():
        write_demo_songs(song_folder)
    return checkpoints, song_folder
