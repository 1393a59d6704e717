"""Adapters: the runs' checkpoints (final, best, step_N) with metadata; info, merge, ComfyUI and diffusers export."""

from __future__ import annotations

import gradio as gr

from acetune.ui.adapters_list import HEADERS, find_adapters
from acetune.ui.commands import export_args, info_args, merge_args
from acetune.ui.context import UiContext
from acetune.ui.pages.common import FieldNotes, guarded, tail


def build(ctx: UiContext, shared: dict) -> None:
    refresh = gr.Button("Find adapters", elem_id="adapters-find")
    table = gr.Dataframe(headers=HEADERS, interactive=False, wrap=True, elem_id="adapters-table")
    adapter = gr.Dropdown([], label="Adapter", allow_custom_value=True, elem_id="adapters-pick")
    notes = FieldNotes()
    notes.under("adapters-pick")
    with gr.Row():
        info = gr.Button("Info", elem_id="adapters-info")
        comfy = gr.Button("Export for ComfyUI", elem_id="adapters-comfyui")
        diffusers = gr.Button("Export for diffusers", elem_id="adapters-diffusers")
    with gr.Accordion("Merge into the base model", open=False):
        checkpoints = gr.Textbox(ctx.checkpoints_text, label="Checkpoints folder", elem_id="merge-checkpoints")
        notes.under("merge-checkpoints")
        strength = gr.Slider(0, 2, value=1.0, step=0.05, label="Strength")
        out = gr.Textbox(label="New model folder", elem_id="merge-out")
        notes.under("merge-out")
        layout = gr.Radio(["official", "diffusers"], value="official", label="Layout")
        merge = gr.Button("Merge", elem_id="adapters-merge")
    shared["checkpoints"].change(lambda v: v, [shared["checkpoints"]], [checkpoints])
    status = gr.Textbox(label="Output", lines=12, interactive=False, elem_id="adapters-output")
    job_id = gr.State("")

    def on_refresh():
        found = find_adapters(ctx.roots.folders)
        rows = [f.row for f in found]
        return rows, gr.update(choices=[str(f.path) for f in found])

    def submit(kind, args):
        job = ctx.queue.submit(kind, args, device=False)
        return job.id, ctx.job_line(job)

    def picked(path):
        return ctx.roots.check(path, must_exist=True, field="adapters-pick")

    @guarded(2, notes)
    def on_info(path):
        return submit("info", info_args(picked(path)))

    def on_export(tool, path):
        return submit(f"export-{tool}", export_args(tool, picked(path), None) + ["--overwrite"])

    @guarded(2, notes)
    def on_merge(path, ckpt, amount, folder, kind):
        check = ctx.roots.check
        return submit("merge", merge_args(picked(path), float(amount), check(ckpt, must_exist=True,
                                                                              field="merge-checkpoints"),
                                          check(folder, field="merge-out"), layout=kind))

    refresh.click(on_refresh, [], [table, adapter])
    submitted = [job_id, status, *notes.outputs]
    info.click(on_info, [adapter], submitted)
    comfy.click(guarded(2, notes)(lambda path: on_export("comfyui", path)), [adapter], submitted)
    diffusers.click(guarded(2, notes)(lambda path: on_export("diffusers", path)), [adapter], submitted)
    merge.click(on_merge, [adapter, checkpoints, strength, out, layout], submitted)

    def follow(job):
        if not job or job not in ctx.queue.jobs:
            return gr.skip()
        found = ctx.queue.jobs[job]
        return ctx.job_line(found) + "\n" + tail(ctx.queue.log(found), 40)

    gr.Timer(1.0).tick(follow, [job_id], [status], concurrency_limit=None)
