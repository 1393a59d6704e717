"""Jobs: the queue in order (what runs, what waits), each with its command line; stop or cancel one."""

from __future__ import annotations

import gradio as gr

from acetune.ui.context import UiContext

HEADERS = ["job", "state", "command"]


def build(ctx: UiContext, shared: dict) -> None:
    gr.Markdown("One device job runs at a time; the others wait here in order. Analyze, info, export and merge "
                "do not wait.")
    table = gr.Dataframe(headers=HEADERS, interactive=False, wrap=True, elem_id="jobs-table")
    with gr.Row():
        pick = gr.Dropdown([], label="Job", elem_id="jobs-pick")
        stop = gr.Button("Stop / cancel", variant="stop", elem_id="jobs-stop")
    log = gr.Textbox(label="Output of the job", lines=12, interactive=False, elem_id="jobs-log")

    def listing(job):
        jobs = ctx.queue.listing()
        rows = [[j.id, ctx.queue.status(j), j.command_line()] for j in jobs]
        found = ctx.queue.jobs.get(job) if job else None
        text = "" if found is None else ctx.queue.log(found)[-4000:] + ctx.queue.log(found, "stderr")[-2000:]
        return rows, gr.update(choices=[j.id for j in jobs]), text

    def on_stop(job):
        if job:
            ctx.queue.stop(job)

    stop.click(on_stop, [pick], [])
    gr.Timer(2.0).tick(listing, [pick], [table, pick, log], concurrency_limit=None)
