"""The `acetune` command: a typer app with one module per subcommand group."""

from __future__ import annotations

import os
import sys
import warnings

import typer
from rich.console import Console

from acetune import __version__
from acetune.cli import (adapter_cmd, cache_cmd, dataset_cmd, demo_cmd, generate_cmd, memory_cmd, model_cmd,
                         preprocess_cmd, presets_cmd, train_cmd)
from acetune.errors import AcetuneError

app = typer.Typer(name="acetune", help="Fine-tune ACE-Step 1.5 music models.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
app.add_typer(model_cmd.app, name="model")
app.add_typer(dataset_cmd.app, name="dataset")
app.command("preprocess")(preprocess_cmd.preprocess_command)
app.command("demo")(demo_cmd.demo_command)
app.add_typer(presets_cmd.app, name="presets")
app.command("train")(train_cmd.train_command)
app.command("generate")(generate_cmd.generate_command)
app.add_typer(adapter_cmd.app, name="adapter")
app.command("merge")(adapter_cmd.merge_command)
app.command("export-comfyui")(adapter_cmd.export_comfyui_command)
app.command("export-diffusers")(adapter_cmd.export_diffusers_command)
app.command("estimate-memory")(memory_cmd.estimate_memory_command)
dataset_cmd.app.command("validate")(cache_cmd.validate_command)


@app.callback(invoke_without_command=True)
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; a user-fixable `AcetuneError` prints its message (no traceback) and exits 2."""
    # diffusers' VAE still builds with the old weight_norm API; the warning is not for our users
    warnings.filterwarnings("ignore", message=".*torch.nn.utils.weight_norm.*", category=FutureWarning)
    # the DiT returns a transposed view; nothing modifies it in place, so FSDP's caution does not apply
    warnings.filterwarnings("ignore", message="FSDP2-wrapped module .* returned a view tensor", category=UserWarning)
    # the Hugging Face libraries' own per-file bars would interleave with ours (a user's setting wins)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        app(args=argv, standalone_mode=False)
    except AcetuneError as err:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {err}", highlight=False, markup=True)
        return 2
    except typer.Exit as done:
        return done.exit_code
    except (typer.Abort, KeyboardInterrupt):
        Console(stderr=True, soft_wrap=True).print("aborted")
        return 130
    except Exception as err:  # click usage errors carry their own exit code and message
        import click

        if isinstance(err, click.ClickException):
            err.show()
            return err.exit_code
        raise
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
