"""Preprocess: songs + checkpoints -> a latent cache, in a child process; progress per song, skips, validation."""

from __future__ import annotations

import gradio as gr

from pathlib import Path

from acetune.ui import songs as song_list
from acetune.ui.commands import preprocess_args
from acetune.ui.context import UiContext
from acetune.ui.pages.common import FieldNotes, guarded, tail
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
    with gr.Accordion("Options", open=False):
        max_duration = gr.Number(240, label="Max duration (s)", info="keep at most this many seconds of each song "
                                                                    "(0 = all)")
        normalize = gr.Dropdown(["none", "peak", "lufs"], value="none", label="Loudness",
                                info="none, peak (-1 dBFS) or lufs (-14) before encoding")
        latent_mode = gr.Dropdown(["sample", "mean"], value="sample", label="Latents",
                                  info="sample the VAE posterior (as ACE-Step trains) or take its mean")
        two_pass = gr.Checkbox(label="Two passes (low memory)", info="VAE + text encoder first, then the condition "
                                                                      "encoder")
        rebuild = gr.Checkbox(label="Rebuild", info="replace a cache made by another checkpoint or other options")
        device = gr.Textbox("auto", label="Device", info="auto, cpu, cuda, cuda:1, mps")
    start = gr.Button("Preprocess", variant="primary", elem_id="pre-start")
    status = gr.Textbox(label="Status", lines=2, interactive=False, elem_id="pre-status")
    bar = gr.HTML(elem_id="pre-progress")
    report = gr.Textbox(label="Report", lines=10, interactive=False, elem_id="pre-report")
    jobs = gr.State({})  # the jobs started, and the songs they work on
    shared.update(checkpoints=checkpoints, cache=cache)

    shared["songs_folder"].change(lambda v: v, [shared["songs_folder"]], [songs])

    @guarded(2, notes)
    def on_start(song_dir, ckpt, out, seconds, loudness, mode, low_memory, replace, where, tag, position):
        check = ctx.roots.check
        folder = check(song_dir, must_exist=True, field="pre-songs")
        model = check(ckpt, must_exist=True, field="pre-checkpoints")
        cache_dir = check(out, field="pre-cache")
        args = preprocess_args(folder, model, cache_dir, tag=tag, tag_position=position,
                               max_duration=float(seconds or 0), normalize=loudness, latent_mode=mode,
                               two_pass=low_memory, rebuild=replace, device=where)
        found = [(row[0], row[-1]) for row in song_list.song_table(folder).rows]
        work = ctx.queue.submit("preprocess", args)
        validate = ctx.queue.submit("validate", ["dataset", "validate", str(cache_dir), "--checkpoint-dir", str(model)])
        started = {"ids": [work.id, validate.id], "folder": str(folder), "songs": found,
                   "passes": 2 if low_memory else 1}
        return started, ctx.job_line(work)

    start.click(on_start, [songs, checkpoints, cache, max_duration, normalize, latent_mode, two_pass, rebuild, device,
                           shared["tag"], shared["position"]], [jobs, status, *notes.outputs])

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
