"""`--adapter PATH[@STRENGTH]` and `--adapter-alpha` as the commands that mix adapters take them (generate, merge)."""

from __future__ import annotations

from pathlib import Path

from acetune.cli.run_folders import missing_adapter_error

ALPHA_HELP = ("lora_alpha for adapter files that do not state one (a bare adapter_model.safetensors without its "
              "adapter_config.json); files that state theirs keep it.")


def parse_adapter(spec: str) -> tuple[Path, float]:
    """`PATH` or `PATH@STRENGTH` (the strength defaults to 1.0)."""
    path, sep, tail = spec.rpartition("@")
    if sep:
        try:
            return Path(path), float(tail)
        except ValueError:
            pass  # an '@' that belongs to the path itself
    return Path(spec), 1.0


def check_adapters(adapters: list[tuple[Path, float]], alpha: float | None = None) -> list:
    """Paths exist, strengths are sane, and each file is readable with a known alpha, before seconds of model
    loading; returns each adapter's `AdapterHeader` (format, kind, metadata: no tensor data read)."""
    from acetune.adapters.alpha_sources import GIVEN
    from acetune.adapters.formats import inspect_adapter
    from acetune.adapters.patcher import checked_strength
    from acetune.errors import ConfigError

    for path, strength in adapters:
        if not path.exists():
            raise missing_adapter_error(path)
        checked_strength(strength, path)
    headers = [inspect_adapter(path, alpha=alpha) for path, _ in adapters]
    if alpha is not None and not any(header.alpha_source == GIVEN for header in headers):
        stated = "; ".join(f"{header.path.name}: {header.alpha_source or 'no alpha applies'}" for header in headers)
        raise ConfigError(f"--adapter-alpha {alpha:g} applies to no adapter: each states its own ({stated})",
                          fix="drop --adapter-alpha; PATH@STRENGTH plays an adapter weaker or stronger")
    return headers
