"""Old flag spellings that still work: each meaning has one flag name, and the names it replaced are aliases.

Aliases are rewritten to the current name before parsing, so they never show in `--help` and the
commands see one parameter. Keyed by command path; `--` ends the options as usual.
"""

from __future__ import annotations

OLD_SPELLINGS: dict[tuple[str, ...], dict[str, str]] = {
    ("train",): {"--output-dir": "--out", "--adapter": "--adapter-kind", "--trigger": "--tag"},
    ("presets", "show"): {"--adapter": "--adapter-kind"},
    ("preprocess",): {"--storage-dtype": "--save-dtype", "--compute-dtype": "--precision"},
    ("merge",): {"--dtype": "--save-dtype"},
    ("model", "convert"): {"--dtype": "--save-dtype"},
    ("estimate-memory",): {"--dtype": "--precision"},
    ("dataset", "edit"): {"--keyscale": "--key", "--timesignature": "--time-signature"},
}


def with_current_spellings(argv: list[str], path: tuple[str, ...]) -> list[str]:
    """`argv` with every old spelling of the command at `path` replaced by its current name."""
    renames = OLD_SPELLINGS.get(path)
    if not renames:
        return list(argv)
    out: list[str] = []
    options_over = False
    for token in argv:
        if token == "--":
            options_over = True
        if not options_over:
            name, eq, value = token.partition("=")
            if name in renames:
                token = renames[name] + eq + value
        out.append(token)
    return out
