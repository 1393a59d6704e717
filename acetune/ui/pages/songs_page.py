"""Songs: pick a folder, see every song's labels with their sources and problems, edit them, preview, play, analyze."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from acetune.data.captions import TAG_POSITIONS
from acetune.data.demo_songs import DEMO_TAG
from acetune.ui import songs
from acetune.ui.commands import LABELLERS, analyze_args, label_args
from acetune.ui.context import UiContext
from acetune.ui.demo_files import build_demo_files
from acetune.ui.pages.common import FieldNotes, guarded, tail


def build(ctx: UiContext, shared: dict) -> None:
    gr.Markdown("Pick a folder of songs. Labels come from `song.json`, `song.txt`, caption/lyrics files or a CSV; "
                "an edit here writes the song's `song.json` (other keys in it are kept).")
    with gr.Row():
        folder = gr.Textbox(label="Songs folder", scale=4, elem_id="songs-folder",
                            info=f"inside {ctx.roots.shown()}")
        load = gr.Button("Load", scale=1, elem_id="songs-load")
    notes = FieldNotes()
    notes.under("songs-folder")
    demo = gr.Button("First run? Build tiny demo checkpoints and songs (as `acetune demo` does)", size="sm",
                     elem_id="build-demo")
    status = gr.Textbox(label="Status", lines=2, elem_id="songs-status", interactive=False)
    table = gr.Dataframe(headers=songs.HEADERS, interactive=False, wrap=True, elem_id="songs-table")
    notices = gr.Markdown()
    song, player, label_boxes, save = _build_editor()
    with gr.Row():
        tag = gr.Textbox(label="Activation tag", value=DEMO_TAG, elem_id="songs-tag")
        position = gr.Radio(list(TAG_POSITIONS), value="prepend", label="Tag position")
    preview = gr.Textbox(label="Prompt this song trains on", lines=8, interactive=False, elem_id="songs-preview")
    with gr.Row():
        overwrite = gr.Checkbox(label="Replace existing bpm/key/time signature", value=False)
        analyze = gr.Button("Analyze bpm / key / time signature", elem_id="songs-analyze")
    analysis = gr.Textbox(label="Analysis", lines=4, interactive=False, elem_id="songs-analysis")
    label = _build_labelling(notes, ctx.checkpoints_text)
    shared.update(songs_folder=folder, tag=tag, position=position)

    @guarded(4, notes)
    def on_load(path):
        checked = ctx.roots.check(path, must_exist=True, field="songs-folder")
        listing = songs.song_table(checked)
        text = "\n".join(f"- {n}" for n in listing.notices)
        return listing.rows, gr.update(choices=listing.files, value=None), text, f"{len(listing.rows)} file(s)"

    @guarded(3)
    def on_demo():
        checkpoints, song_folder = build_demo_files(ctx.roots.folders[0])
        return str(song_folder), str(checkpoints), f"built {checkpoints} and {song_folder}"

    @guarded(len(label_boxes) + 2)
    def on_pick(path, file):
        if not file:  # the list was just (re)loaded: the load's status stays
            return (*[""] * len(label_boxes), None, gr.skip())
        checked = ctx.roots.check(path, must_exist=True)
        labels = songs.song_labels(checked, file).to_dict(full=True)
        values = ["" if labels[k] in (None, "unknown") else str(labels[k]) for k in songs.EDITABLE]
        return (*values, str(ctx.roots.check(songs.audio_path(checked, file))), "")

    @guarded(2)
    def on_save(path, file, *values):
        checked = ctx.roots.check(path, must_exist=True)
        if not file:
            return gr.skip(), "pick a song first"
        written = songs.save_song(checked, file, dict(zip(songs.EDITABLE, values)))
        return songs.song_table(checked).rows, "nothing changed" if written is None else f"wrote {written}"

    @guarded(1)
    def on_preview(path, file, tag_text, where):
        if not file:
            return ""
        return songs.prompt_preview(ctx.roots.check(path, must_exist=True), file, tag_text, where)

    @guarded(2, notes)
    def on_analyze(path, replace):
        checked = ctx.roots.check(path, must_exist=True, field="songs-folder")
        job = ctx.queue.submit("analyze", analyze_args(checked, overwrite=replace), device=False)
        return job.id, ctx.job_line(job)

    job_id = gr.State("")
    loaded = [table, song, notices, status, *notes.outputs]
    load.click(on_load, [folder], loaded)
    folder.submit(on_load, [folder], loaded)
    demo.click(on_demo, [], [folder, label.checkpoints, status]).then(on_load, [folder], loaded)
    song.change(on_pick, [folder, song], [*label_boxes, player, status]).then(
        on_preview, [folder, song, tag, position], [preview])
    save.click(on_save, [folder, song, *label_boxes], [table, status]).then(
        on_preview, [folder, song, tag, position], [preview])
    for control in (tag, position):
        control.change(on_preview, [folder, song, tag, position], [preview])
    analyze.click(on_analyze, [folder, overwrite], [job_id, analysis, *notes.outputs])

    def follow(job):
        found = ctx.queue.jobs.get(job) if job else None
        return gr.skip() if found is None else ctx.job_line(found) + "\n" + tail(ctx.queue.log(found), 12)

    timer = gr.Timer(1.0)
    timer.tick(follow, [job_id], [analysis], concurrency_limit=None)
    _wire_labelling(ctx, label, folder, table, timer, notes, reload_rows=lambda path: on_load(path)[0])


def _build_editor() -> tuple[gr.Dropdown, gr.Audio, list[gr.Textbox], gr.Button]:
    """The song picker, its player and one box per editable label (in `songs.EDITABLE` order), and Save."""
    with gr.Group():
        song = gr.Dropdown(label="Song", choices=[], elem_id="song-pick")
        player = gr.Audio(label="Play", type="filepath", interactive=False, elem_id="song-player")
        with gr.Row():
            caption = gr.Textbox(label="Caption", lines=2, elem_id="edit-caption", scale=3)
            genre = gr.Textbox(label="Genre", elem_id="edit-genre")
        lyrics = gr.Textbox(label="Lyrics (empty: instrumental)", lines=3, elem_id="edit-lyrics")
        with gr.Row():
            bpm = gr.Textbox(label="BPM", elem_id="edit-bpm", min_width=80)
            key = gr.Textbox(label="Key", elem_id="edit-key", min_width=80)
            timesig = gr.Textbox(label="Time sig.", elem_id="edit-timesig", min_width=80)
            language = gr.Textbox(label="Language", elem_id="edit-language", min_width=80)
        save = gr.Button("Save labels", variant="primary", elem_id="songs-save")
    return song, player, [caption, lyrics, genre, bpm, key, timesig, language], save


def _wire_labelling(ctx: UiContext, label: "_Labelling", folder: gr.Textbox, table: gr.Dataframe, timer: gr.Timer,
                    notes: FieldNotes, reload_rows: Callable[[str], list]) -> None:
    """Label runs `acetune dataset label` as a job; its output is followed, and the table reloaded once it ends."""

    @guarded(2, notes)
    def on_label(path, ckpt, chosen, dry_run, replace):
        check = ctx.roots.check
        args = label_args(check(path, must_exist=True, field="songs-folder"),
                          check(ckpt, must_exist=True, field="label-checkpoints"), labellers=list(chosen),
                          dry_run=dry_run, overwrite=replace)
        job = ctx.queue.submit("label", args)
        return job.id, ctx.job_line(job)

    def follow_label(job, path):
        """The labeller's output; once it ended, the table again (with the sources it wrote) and no more polling."""
        found = ctx.queue.jobs.get(job) if job else None
        if found is None:
            return gr.skip(), gr.skip(), gr.skip()
        text = ctx.job_line(found) + "\n" + tail(ctx.queue.log(found), 20)
        if found.active:
            return text, gr.skip(), gr.skip()
        return text, "", reload_rows(path)

    label.start.click(on_label, [folder, label.checkpoints, label.labellers, label.dry_run, label.overwrite],
                      [label.job_id, label.output, *notes.outputs])
    timer.tick(follow_label, [label.job_id, folder], [label.output, label.job_id, table], concurrency_limit=None)


@dataclass(frozen=True)
class _Labelling:
    checkpoints: gr.Textbox
    labellers: gr.CheckboxGroup
    dry_run: gr.Checkbox
    overwrite: gr.Checkbox
    start: gr.Button
    output: gr.Textbox
    job_id: gr.State


def _build_labelling(notes: FieldNotes, checkpoints: str = "") -> _Labelling:
    with gr.Accordion("Label with the 5 Hz LM / Whisper (`acetune dataset label`)", open=False,
                      elem_id="songs-label"):
        folder = gr.Textbox(checkpoints, label="Checkpoints folder", elem_id="label-checkpoints",
                            info="holds the acestep-5Hz-lm-… folders (and whisper-… for Whisper) beside the DiT")
        notes.under("label-checkpoints")
        labellers = gr.CheckboxGroup(list(LABELLERS), value=["lm"], label="Labellers", elem_id="label-with",
                                     info="lm: the 5 Hz LM describes each song (caption, genre, bpm, key, …); "
                                          "whisper: transcribes the lyrics")
        with gr.Row():
            dry_run = gr.Checkbox(True, label="Dry run (show what would be written)", elem_id="label-dry-run")
            overwrite = gr.Checkbox(False, label="Also replace values you wrote", elem_id="label-overwrite")
        start = gr.Button("Label", elem_id="label-start")
        output = gr.Textbox(label="Labelling", lines=8, interactive=False, elem_id="label-output")
    return _Labelling(folder, labellers, dry_run, overwrite, start, output, gr.State(""))
