"""Strict comparison of a model's expected tensors with a checkpoint's, with a readable report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from acetune.errors import ModelLoadError

SHOWN = 8


@dataclass(frozen=True)
class KeyReport:
    missing: list[str]  # expected by the model, absent from the file
    unexpected: list[str]  # in the file, unknown to the model
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]]  # (key, expected, found)
    matched: int

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self) -> str:
        lines = []
        for title, items in (("missing", self.missing), ("unexpected", self.unexpected)):
            if items:
                shown = ", ".join(items[:SHOWN]) + (f", ... ({len(items) - SHOWN} more)" if len(items) > SHOWN else "")
                lines.append(f"{len(items)} {title} key(s): {shown}")
        if self.mismatched:
            shown = "; ".join(f"{k}: model {list(e)} vs file {list(f)}" for k, e, f in self.mismatched[:SHOWN])
            lines.append(f"{len(self.mismatched)} mis-shaped key(s): {shown}")
        return "\n  ".join(lines) if lines else f"all {self.matched} keys match"


def compare_keys(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]]) -> KeyReport:
    missing = sorted(k for k in expected if k not in found)
    unexpected = sorted(k for k in found if k not in expected)
    mismatched = sorted((k, expected[k], found[k]) for k in expected if k in found and tuple(expected[k]) != tuple(found[k]))
    return KeyReport(missing, unexpected, mismatched, len(expected) - len(missing) - len(mismatched))


def raise_if_mismatched(report: KeyReport, path: Path, strict: bool) -> None:
    """Mis-shaped keys always fail; missing/unexpected keys fail only when strict."""
    if report.mismatched or (strict and not report.ok):
        raise ModelLoadError(
            "weights do not match the ACE-Step architecture described by config.json:\n  " + report.describe(),
            path=path,
            fix="check that config.json belongs to these weights (e.g. an XL config with 2B weights), "
                "or pass strict=False / --no-strict to load a partial checkpoint",
        )
