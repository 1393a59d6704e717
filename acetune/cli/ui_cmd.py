"""`acetune ui`: start the local web app (gradio is imported only here, when the command runs)."""

from __future__ import annotations

from pathlib import Path

import typer

from acetune.errors import AcetuneError


def ui_command(
    host: str = typer.Option("127.0.0.1", help="Address to listen on; anything but loopback needs --auth."),
    port: int = typer.Option(7860, help="Port to listen on."),
    root: list[Path] = typer.Option(None, help="Folder the app may read and write (repeatable; default: the current "
                                               "folder)."),
    checkpoint_dir: Path = typer.Option(None, help="ACE-Step checkpoints folder: the app may use it too, and its "
                                                   "checkpoints fields start with it."),
    auth: str = typer.Option(None, metavar="USER:PASS", help="Require this login (needed for a non-loopback --host)."),
    auth_token: str = typer.Option(None, metavar="TOKEN", envvar="ACETUNE_UI_TOKEN", show_envvar=True,
                                   help="Or require this token as the password (any user name); from the "
                                        "environment it stays out of the process list."),
    parallel: int = typer.Option(1, min=1, help="Device jobs that may run at once (preprocess, train, generate)."),
) -> None:
    """A web app for the whole path: songs, preprocess, train (live loss and auditions), generate, adapters."""
    from acetune.ui import Roots, bind_warning, login_of

    credentials = login_of(auth, auth_token)
    warning = bind_warning(host, credentials)
    roots = Roots.default(root, checkpoint_dir)
    try:
        from acetune.ui.app import launch
        from acetune.ui.context import UiContext
    except ImportError as err:  # gradio is an optional extra
        raise AcetuneError(f"the web app needs gradio ({err.name} is not installed)",
                           fix='pip install "acetune[ui]"') from None
    if warning:
        typer.secho(warning, fg="yellow", err=True)
    ctx = UiContext.open(roots, parallel=parallel, checkpoint_dir=checkpoint_dir)
    typer.echo(f"acetune ui on http://{host}:{port} (folders: {roots.shown()}); Ctrl-C stops the app, not its jobs")
    try:
        launch(ctx, host=host, port=port, auth=credentials)
    finally:
        ctx.queue.close()
