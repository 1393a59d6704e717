"""Generate: caption, lyrics, metas, seeds, any mix of adapters with strengths, sampler settings; players and
the sidecar JSON of every take. Runs as `acetune generate` in a child process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import gradio as gr

from acetune.ui.adapters_list import find_adapters
from acetune.ui.commands import generate_args
from acetune.ui.context import UiContext
from acetune.ui.pages.common import FieldNotes, guarded, tail

ADAPTER_SLOTS = 3
TAKE_SLOTS = 4
_WROTE = re.compile(r"^wrote (.+)$")


def build(ctx: UiContext, shared: dict) -> None:
    notes = FieldNotes()
    checkpoints = gr.Textbox(ctx.checkpoints_text, label="Checkpoints folder", elem_id="gen-checkpoints")
    notes.under("gen-checkpoints")
    shared["checkpoints"].change(lambda v: v, [shared["checkpoints"]], [checkpoints])
    caption = gr.Textbox(label="Caption", lines=2, info="genre, instruments, mood; add the adapter's trigger word",
                         elem_id="gen-caption")
    lyrics = gr.Textbox(label="Lyrics (empty: instrumental)", lines=3)
    with gr.Row():
        language = gr.Textbox("en", label="Language", min_width=80)
        bpm = gr.Number(0, label="BPM (0: not given)", precision=0, min_width=80)
        key = gr.Textbox(label="Key", min_width=80)
        timesig = gr.Textbox(label="Time sig.", min_width=80)
    with gr.Row():
        duration = gr.Number(10, label="Duration (s)", min_width=80, elem_id="gen-duration")
        seed = gr.Number(42, label="Seed", precision=0, min_width=80)
        takes = gr.Number(1, label="Takes (seed, seed+1, …)", precision=0, minimum=1, maximum=TAKE_SLOTS,
                          min_width=80)
    with gr.Accordion("Adapters", open=True):
        refresh = gr.Button("Find adapters", size="sm", elem_id="gen-find")
        slots = []
        for i in range(ADAPTER_SLOTS):
            with gr.Row():
                slots.append((gr.Dropdown([], label=f"Adapter {i + 1}", allow_custom_value=True,
                                          elem_id=f"gen-adapter-{i}", scale=3),
                              gr.Slider(0, 2, value=1.0, step=0.05, label="Strength", elem_id=f"gen-strength-{i}")))
            notes.under(f"gen-adapter-{i}")
    with gr.Accordion("Sampler (0: the model's and adapter's recommendation)", open=False):
        steps = gr.Number(0, label="Steps", precision=0)
        shift = gr.Number(0, label="Shift")
        guidance = gr.Number(0, label="Guidance (base/sft)")
        device = gr.Textbox("auto", label="Device")
    out = gr.Textbox(label="Output folder", elem_id="gen-out")
    notes.under("gen-out")
    go = gr.Button("Generate", variant="primary", elem_id="gen-start")
    status = gr.Textbox(label="Status", lines=3, interactive=False, elem_id="gen-status")
    players = [gr.Audio(visible=False, type="filepath", interactive=False, elem_id=f"take-{i}")
               for i in range(TAKE_SLOTS)]
    sidecar = gr.Code(label="Sidecar JSON of the first take", language="json", elem_id="gen-sidecar")
    job_id = gr.State("")
    done = gr.State("")

    def on_refresh():
        names = [str(a.path) for a in find_adapters(ctx.roots.folders)]
        return [gr.update(choices=[""] + names) for _ in slots]

    @guarded(2, notes)
    def on_go(ckpt, cap, words, lang, tempo, keyscale, signature, seconds, first_seed, count, n_steps, n_shift,
              n_guidance, where, folder, *adapter_values):
        check = ctx.roots.check
        chosen = [(check(adapter_values[2 * i], must_exist=True, field=f"gen-adapter-{i}"),
                   float(adapter_values[2 * i + 1])) for i in range(ADAPTER_SLOTS) if adapter_values[2 * i]]
        args = generate_args(check(ckpt, must_exist=True, field="gen-checkpoints"), check(folder, field="gen-out"),
                             caption=cap, lyrics=words, language=lang,
                             bpm=_given(tempo, int), key=keyscale, time_signature=signature, duration=float(seconds),
                             seed=int(first_seed), batch=int(count), steps=_given(n_steps, int),
                             shift=_given(n_shift, float), guidance=_given(n_guidance, float),
                             adapters=chosen, name="take", device=where)
        job = ctx.queue.submit("generate", args + ["--overwrite"])
        return job.id, ctx.job_line(job)

    refresh.click(on_refresh, [], [s[0] for s in slots])
    go.click(on_go, [checkpoints, caption, lyrics, language, bpm, key, timesig, duration, seed, takes, steps, shift,
                     guidance, device, out, *[c for slot in slots for c in slot]], [job_id, status, *notes.outputs])

    def follow(job, shown_for):
        if not job or job not in ctx.queue.jobs:
            return (gr.skip(),) * (TAKE_SLOTS + 2) + (shown_for,)
        found = ctx.queue.jobs[job]
        line = ctx.job_line(found) + "\n" + tail(ctx.queue.log(found), 8)
        if found.active or shown_for == job:
            return (line, *[gr.skip()] * (TAKE_SLOTS + 1), shown_for)
        files = [Path(m[1]) for m in map(_WROTE.match, ctx.queue.log(found).splitlines()) if m]
        updates = [gr.update(value=str(f), visible=True, label=f.name) for f in files[:TAKE_SLOTS]]
        updates += [gr.update(visible=False)] * (TAKE_SLOTS - len(updates))
        side = files[0].with_suffix(".json") if files else None
        text = json.dumps(json.loads(side.read_text()), indent=2) if side and side.is_file() else ""
        return (line, *updates, text, job)

    gr.Timer(1.0).tick(follow, [job_id, done], [status, *players, sidecar, done], concurrency_limit=None)


def _given(value, kind):
    """A number field's value, or None for empty or 0 (the command's own default: not given, or recommended)."""
    return kind(value) if value else None
