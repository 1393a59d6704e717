"""Train: presets, the common options, an advanced section generated from the config schema, a live memory
estimate, start / stop / resume in a child process, and the run followed live from its events.jsonl."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from acetune.errors import ConfigError
from acetune.ui import train_form
from acetune.ui.commands import resume_args, train_args
from acetune.ui.context import UiContext
from acetune.ui.estimate import memory_line
from acetune.ui.pages.common import FieldNotes, guarded
from acetune.ui.pages.form_controls import control
from acetune.ui.run_log import RunLog

AUDITION_SLOTS = 6  # the latest auditions get a player each; index.jsonl in the run folder lists them all
TICK_S = 0.5
SECTION_TITLES = {"data": "Data", "adapter": "Adapter", "objective": "Objective", "optim": "Optimizer",
                  "schedule": "Schedule", "loop": "Loop", "save": "Saving", "log": "Logging", "audition": "Auditions"}


@dataclass
class _Form:
    preset: gr.Dropdown
    controls: list  # one per form field, in form_fields() order
    notes: FieldNotes  # one per form field: an error about the field shows under it
    memory: gr.Textbox
    anyway: gr.Checkbox
    start: gr.Button
    stop: gr.Button
    resume: gr.Button


@dataclass
class _Monitor:
    status: gr.Textbox
    run_dir: gr.Textbox
    run_notes: FieldNotes  # an error about the run folder (resume) shows under it
    summary: gr.Markdown
    plot: gr.LinePlot
    points: gr.Markdown
    players: list
    tensorboard: gr.Markdown

    def outputs(self) -> list:
        return [self.status, self.summary, self.plot, self.points, self.tensorboard, *self.players]


def _build_form(fields: list[train_form.FormField], checkpoints: str) -> _Form:
    presets = train_form.preset_names()
    preset = gr.Dropdown(presets, value="quick_test" if "quick_test" in presets else presets[0], label="Preset",
                         info="built-in and your own (`acetune presets list`)", elem_id="train-preset")
    values = train_form.preset_values(preset.value, fields)
    if checkpoints:  # `acetune ui --checkpoint-dir`
        values[[f.key for f in fields].index("data.checkpoint_dir")] = checkpoints
    common = [f for f in fields if f.key in train_form.COMMON]
    notes = FieldNotes("cfg-")
    with gr.Group():
        controls = [control(field, value, notes, "cfg-") for field, value in zip(common, values)]
    with gr.Accordion("Advanced (every other config field)", open=False, elem_id="train-advanced"):
        rest = list(zip(fields[len(common):], values[len(common):]))
        for section in dict.fromkeys(f.section for f, _ in rest):
            with gr.Accordion(SECTION_TITLES.get(section, section), open=False):
                controls += [control(field, value, notes, "cfg-") for field, value in rest if field.section == section]
    memory = gr.Textbox(label="Memory estimate", interactive=False, elem_id="train-memory")
    anyway = gr.Checkbox(label="Start even if the estimate says it does not fit", value=False)
    with gr.Row():
        start = gr.Button("Start", variant="primary", elem_id="train-start")
        stop = gr.Button("Stop (saves a checkpoint)", variant="stop", elem_id="train-stop")
        resume = gr.Button("Resume", elem_id="train-resume")
    return _Form(preset, controls, notes, memory, anyway, start, stop, resume)


def _build_monitor() -> _Monitor:
    status = gr.Textbox(label="Status", lines=3, interactive=False, elem_id="train-status")
    run_dir = gr.Textbox(label="Run folder followed", elem_id="train-run",
                         info="the run started here, or type any run folder to follow it")
    run_notes = FieldNotes()
    run_notes.under("train-run")
    summary = gr.Markdown(elem_id="train-summary")
    plot = gr.LinePlot(x="step", y="loss", color="series", title="Loss", elem_id="train-plot", height=260)
    points = gr.Markdown(elem_id="train-points")
    players = [gr.Audio(visible=False, type="filepath", interactive=False, elem_id=f"audition-{i}")
               for i in range(AUDITION_SLOTS)]
    return _Monitor(status, run_dir, run_notes, summary, plot, points, players, gr.Markdown())


def build(ctx: UiContext, shared: dict) -> None:
    fields = train_form.form_fields()
    with gr.Row(equal_height=False):
        with gr.Column(min_width=300):
            form = _build_form(fields, ctx.checkpoints_text)
        with gr.Column(min_width=300):
            monitor = _build_monitor()
    by_key = {f.key: c for f, c in zip(fields, form.controls)}
    shared["cache"].change(lambda v: v, [shared["cache"]], [by_key["data.cache"]])
    shared["checkpoints"].change(lambda v: v, [shared["checkpoints"]], [by_key["data.checkpoint_dir"]])
    train_job = _wire_form(ctx, fields, form, monitor)
    shown = gr.State((0, 0))  # (plotted points, auditions shown): skip updates when nothing is new
    gr.Timer(TICK_S).tick(lambda folder, job, seen: follow_run(ctx, folder, job, seen),
                          [monitor.run_dir, train_job, shown], [*monitor.outputs(), shown], concurrency_limit=None)
    shared["app_load"].append((lambda: _followed(ctx), [], [monitor.run_dir, train_job]))


def _wire_form(ctx: UiContext, fields: list[train_form.FormField], form: _Form, monitor: _Monitor) -> gr.State:
    """The form's events: the estimate as values change, a preset's values, start / stop / resume (the job's id
    goes into the returned State). An error about a field shows under it."""
    notes, run_notes, status = form.notes, monitor.run_notes, monitor.status

    def config_of(name, *given):
        given = list(given)
        for i, f in enumerate(fields):
            if f.key in train_form.PATH_FIELDS and given[i]:
                given[i] = str(ctx.roots.check(given[i], field=f.key))
        return train_form.build_config(name, fields, given)

    @guarded(1, notes)
    def on_change(name, *given):
        return memory_line(config_of(name, *given))

    @guarded(len(fields) + 2)
    def on_preset(name, previous, *given):
        changed = train_form.switched_values(previous, name, fields, list(given))
        return (*[changed.get(f.key, gr.skip()) for f in fields], name, "")

    @guarded(3, notes)
    def on_start(name, confirm, estimate, *given):
        config = config_of(name, *given)
        if not config.data.cache:
            raise ConfigError("no cache folder chosen", fix="preprocess your songs, then put the cache folder in "
                                                             "data.cache")
        if "DOES NOT FIT" in (estimate or "") and not confirm:
            return gr.skip(), gr.skip(), "the estimate says this will not fit; change settings or tick 'Start even…'"
        out = Path(config.save.output_dir)
        file = train_form.write_run_config(config, ctx.roots.state / "configs", f"train-{time.time_ns()}")
        job = ctx.queue.submit("train", train_args(file), run_dir=out)
        ctx.logs.pop(out, None)  # a new run in the same folder: read it from the start
        return str(out), job.id, ctx.job_line(job)

    @guarded(1)
    def on_stop(job):
        if job and job in ctx.queue.jobs:
            ctx.queue.stop(job)
            return f"{job}: stopping at the next step boundary (a checkpoint is saved)"
        return "no training job to stop"

    @guarded(2, run_notes)
    def on_resume(folder):
        out = ctx.roots.check(folder, must_exist=True, field="train-run")
        job = ctx.queue.submit("train", resume_args(out), run_dir=out)
        return job.id, ctx.job_line(job)

    train_job, previous = gr.State(""), gr.State(form.preset.value)
    inputs = [form.preset, *form.controls]
    gr.on([c.change for c in inputs], on_change, inputs, [form.memory, *notes.outputs], trigger_mode="always_last",
          concurrency_limit=1, show_progress="hidden")
    form.preset.change(on_preset, [form.preset, previous, *form.controls], [*form.controls, previous, status])
    form.start.click(on_start, [form.preset, form.anyway, form.memory, *form.controls],
                     [monitor.run_dir, train_job, status, *notes.outputs])
    form.stop.click(on_stop, [train_job], [status])
    form.resume.click(on_resume, [monitor.run_dir], [train_job, status, *run_notes.outputs])
    return train_job


def _followed(ctx: UiContext) -> tuple:
    """What the page follows when it opens (also after the app restarted): the newest training job that is
    still running, else the newest one; its run folder and its id."""
    jobs = [j for j in ctx.queue.listing() if j.kind == "train"]
    running = [j for j in jobs if j.active] or jobs
    return (running[-1].run_dir or "", running[-1].id) if running else (gr.skip(), gr.skip())


def follow_run(ctx: UiContext, folder: str, job: str, seen: tuple[int, int]) -> tuple:
    """The monitor's values for the followed run: only what changed since `seen` (points, auditions)."""
    status_text = ctx.job_line(ctx.queue.jobs.get(job)) if job else gr.skip()
    if not folder:
        return (status_text, *[gr.skip()] * (4 + AUDITION_SLOTS), seen)
    log = ctx.run_log(Path(folder))
    counts = (len(log.steps) + len(log.evals), len(log.auditions))
    plot_update = _plot(log) if counts[0] != seen[0] or not seen[0] else gr.skip()
    players_update = _players(log) if counts[1] != seen[1] else [gr.skip()] * AUDITION_SLOTS
    board = f"TensorBoard: `tensorboard --logdir {Path(folder) / 'logs'}`"
    return (status_text, log.summary(), plot_update, f"{len(log.steps)} train points, {len(log.evals)} eval points",
            board, *players_update, counts)


def _plot(log: RunLog) -> pd.DataFrame:
    return pd.DataFrame(log.points(), columns=["step", "loss", "series"])


def _players(log: RunLog) -> list:
    latest = log.auditions[-AUDITION_SLOTS:][::-1]
    updates = []
    for record in latest:
        what = "base model" if record["strength"] is None else f"strength {record['strength']:g}"
        updates.append(gr.update(value=record["path"], visible=True,
                                 label=f"audition · step {record['step']} · {what} · seed {record['seed']}"))
    return updates + [gr.update(visible=False)] * (AUDITION_SLOTS - len(updates))
