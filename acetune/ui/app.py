"""The web app: one Gradio Blocks with a page per step of the path, over the context's roots and job queue."""

from __future__ import annotations

import gradio as gr

from acetune.ui.access import Login, TokenLogin
from acetune.ui.context import UiContext
from acetune.ui.pages import adapters_page, generate_page, jobs_page, preprocess_page, songs_page, train_page

PAGES = (("Songs", songs_page), ("Preprocess", preprocess_page), ("Train", train_page), ("Generate", generate_page),
         ("Adapters", adapters_page), ("Jobs", jobs_page))
# narrow screens: no control may push the page wider than the phone (tables scroll inside themselves)
CSS = """
.gradio-container { max-width: 100% !important; }
.gradio-container .table-wrap { max-width: 100%; overflow-x: auto; }
.field-error { color: var(--error-text-color, #b91c1c); white-space: pre-wrap; overflow-wrap: anywhere;
  font-size: var(--text-sm); padding: 2px 8px; }
@media (max-width: 640px) { .gradio-container { padding: 4px !important; } }
"""


def build_app(ctx: UiContext) -> gr.Blocks:
    shared: dict = {"app_load": []}
    with gr.Blocks(title="acetune", analytics_enabled=False) as app:
        gr.Markdown(f"## acetune\nFolders this app may use: `{ctx.roots.shown()}`")
        with gr.Tabs():
            for title, page in PAGES:
                with gr.Tab(title, id=title.lower(), elem_id=f"tab-{title.lower()}"):
                    page.build(ctx, shared)
        for fn, inputs, outputs in shared["app_load"]:
            app.load(fn, inputs, outputs)
    return app


def launch(ctx: UiContext, *, host: str, port: int, auth: Login | None, block: bool = True):
    """Serve the app (returns it when `block` is False); files are served only from inside the roots, and never
    through a share link."""
    app = build_app(ctx)
    app.queue(default_concurrency_limit=4)
    message = auth.message if isinstance(auth, TokenLogin) else None
    app.launch(server_name=host, server_port=port, auth=auth, auth_message=message, share=False, inbrowser=False,
               allowed_paths=[str(root) for root in ctx.roots.folders], css=CSS, prevent_thread_lock=not block,
               quiet=True, footer_links=[], ssr_mode=False, show_error=False)
    return app
