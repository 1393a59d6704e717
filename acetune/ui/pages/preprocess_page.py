"""Preprocess: songs + checkpoints -> a latent cache, in a child process; progress per song, skips, validation.

The options are generated from the config's `preprocess` section (preprocess_form), as the Train form is."""

from __future__ import annotations

import gradio as gr

from pathlib import Path

from acetune.ui import preprocess_form
from acetune.ui import songs as song_list
from acetune.ui.commands import preprocess_args
from acetune.ui.context import UiContext
from acetune.ui.pages.common import FieldNotes, guarded, tail
from acetune.ui.pages.form_controls import control
from acetune.ui.song_progress import overall_html, rows_html, song_rows


def build(ctx: UiContext, shared: dict) -> None:
    gr.Markdown("Decode, encode and cache every song once (reruns redo only new or changed songs). "
                "Runs as `acetune preprocess` in its own process; the validation report follows.")
    notes = FieldNotes()
    songs = gr.Textbox(label="Songs folder", elem_id="pre-songs")
    notes.under("pre-songs")
    checkpoints = gr.Textbox(ctx.checkpoints_text, label="Checkpoints folder",
                             info="holds vae/, Qwen3-Embedding-0.6B/ and the DiT", elem_id="pre-checkpoints")
    notes.under("pre-checkpoints")
    cache = gr.Textbox(label="Cache folder to write", elem_id="pre-cache")
    notes.under("pre-cache")
    fields = preprocess_form.preprocess_fields()
    with gr.Accordion("Options (the config's preprocess section)", open=False, elem_id="pre-options"):
        rebuild = gr.Checkbox(label="Rebuild", info="replace a cache made by another checkpoint or other options",
                              elem_id="pre-rebuild")
        options = [control(f, value, notes, "pre-cfg-")
                   for f, value in zip(fields, preprocess_form.default_values(fields))]
    start = gr.Button("Preprocess", variant="primary", elem_id="pre-start")
    status = gr.Textbox(label="Status", lines=2, interactive=False, elem_id="pre-status")
    bar = gr.HTML(elem_id="pre-progress")
    report = gr.Textbox(label="Report", lines=10, interactive=False, elem_id="pre-report")
    jobs = gr.State({})  # the jobs started, and the songs they work on
    shared.update(checkpoints=checkpoints, cache=cache)

    shared["songs_folder"].change(lambda v: v, [shared["songs_folder"]], [songs])

    @guarded(2, notes)
    def on_start(song_dir, ckpt, out, replace, tag, position, *values):
        check = ctx.roots.check
        folder = check(song_dir, must_exist=True, field="pre-songs")
        model = check(ckpt, must_exist=True, field="pre-checkpoints")
        cache_dir = check(out, field="pre-cache")
        overrides, chosen = preprocess_form.preprocess_overrides(fields, list(values))
        args = preprocess_args(folder, model, cache_dir, tag=tag, tag_position=position, rebuild=replace,
                               overrides=overrides)
        found = [(row[0], row[-1]) for row in song_list.song_table(folder).rows]
        work = ctx.queue.submit("preprocess", args)
        validate = ctx.queue.submit("validate", ["dataset", "validate", str(cache_dir), "--checkpoint-dir", str(model)])
        started = {"ids": [work.id, validate.id], "folder": str(folder), "songs": found,
                   "passes": 2 if chosen.two_pass else 1}
        return started, ctx.job_line(work)

    start.click(on_start, [songs, checkpoints, cache, rebuild, shared["tag"], shared["position"], *options],
                [jobs, status, *notes.outputs])

    def follow(started):
        if not started:
            return gr.skip(), gr.skip(), gr.skip()
        work, validate = (ctx.queue.jobs[i] for i in started["ids"])
        text = tail(ctx.queue.log(work), 30)
        if not validate.active:
            text += "\n\nvalidation:\n" + tail(ctx.queue.log(validate) + ctx.queue.log(validate, "stderr"), 20)
        return ctx.job_line(work) + "\n" + ctx.job_line(validate), _progress(ctx, work, started), text

    gr.Timer(1.0).tick(follow, [jobs], [status, bar, report], concurrency_limit=None)


def _progress(ctx: UiContext, work, started: dict) -> str:
    """The overall bar, then a row per song (done, waiting, skipped with the reason)."""
    stdout = ctx.queue.log(work)
    rows = song_rows([tuple(pair) for pair in started["songs"]], Path(started["folder"]), stdout,
                     passes=started["passes"], ended=not work.active, ok=work.exit_code in (0, 3))
    return overall_html(stdout) + rows_html(rows)
