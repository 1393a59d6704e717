"""Load, rescale and unload adapters on a live decoder by patching its weights.

Generation wants several adapters of any kinds mixed at chosen strengths, changed between
renders, and the base back exactly afterwards. Injecting PEFT/LyCORIS layers costs a forward
per adapter and cannot mix them, so instead each touched weight is backed up to the CPU once
(only the touched ones, never a model copy) and the live weight is always recomputed from
that backup: base, then each loaded adapter's `merged_weight` in load order. When the last
adapter touching a weight goes, the backup is copied back, so the base returns bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from acetune.adapters.formats import AdapterFile, read_adapter
from acetune.adapters.kinds import STANDARD_FILES
from acetune.adapters.provenance import trained_rope_dtype
from acetune.adapters.targets import require_plain_decoder
from acetune.errors import ConfigError, ModelLoadError

STRENGTH_RANGE = (-2.0, 2.0)


def checked_strength(strength: float, path: Path) -> float:
    """`strength` as a float within STRENGTH_RANGE, or a ConfigError naming the adapter."""
    low, high = STRENGTH_RANGE
    try:
        value = float(strength)
    except (TypeError, ValueError):
        raise ConfigError(f"adapter strength must be a number, got {strength!r}", path=path) from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(f"adapter strength {strength} is outside [{low}, {high}]", path=path,
                          fix="1.0 is the strength it was trained at; 0 turns it off")
    return value


@dataclass(frozen=True)
class LoadedAdapter:
    """One adapter patched into the decoder, as the user sees it."""

    name: str
    path: Path
    kind: str
    strength: float
    modules: int  # decoder tensors it patches
    warnings: tuple[str, ...] = ()
    format: str = ""
    metadata: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(eq=False)
class _Entry:
    record: LoadedAdapter
    adapter: AdapterFile
    by_target: dict  # decoder tensor name -> ModuleDelta


class AdapterPatcher:
    """Patch any number of adapters into `decoder` (a plain DiT, no PEFT/LyCORIS layers injected)."""

    STRENGTH_RANGE = STRENGTH_RANGE

    def __init__(self, decoder: nn.Module, *, variant: str | None = None):
        _require_plain(decoder)
        self.decoder = decoder
        self.variant = variant
        self._entries: list[_Entry] = []
        self._backups: dict[str, torch.Tensor] = {}  # tensor name -> CPU clone of the base value

    @property
    def loaded(self) -> tuple[LoadedAdapter, ...]:
        return tuple(entry.record for entry in self._entries)

    def load(self, path: str | Path, strength: float = 1.0, *, name: str | None = None,
             alpha: float | None = None) -> LoadedAdapter:
        """Read the adapter at `path`, check it fits this decoder, and patch it in at `strength`.

        `alpha` applies only where the file states no alpha of its own (see `read_adapter`).
        """
        path = Path(path)
        strength = checked_strength(strength, path)
        if any(entry.record.path.resolve() == path.resolve() for entry in self._entries):
            raise ConfigError("this adapter is already loaded", path=path,
                              fix="change its strength instead of loading it twice")
        taken = {entry.record.name for entry in self._entries}
        if name is None:  # runs/a/final and runs/b/final are "final" and "final-2"
            name = _default_name(path)
            name = next(f"{name}-{i}" for i in range(2, len(taken) + 3) if f"{name}-{i}" not in taken) \
                if name in taken else name
        elif name in taken:
            raise ConfigError(f"an adapter named {name!r} is already loaded", path=path,
                              fix="give it another name, or unload the loaded one first")
        _require_plain(self.decoder)
        adapter = read_adapter(path, alpha=alpha)
        by_target = {delta.target: delta for delta in adapter.deltas.values()}
        self._check_fits(adapter, by_target)
        record = LoadedAdapter(name, path, adapter.kind, strength, len(by_target), self._warnings(adapter),
                               adapter.format, dict(adapter.metadata))
        entry = _Entry(record, adapter, by_target)
        self._entries.append(entry)
        try:
            self._refresh(by_target)
        except BaseException:
            self._entries.remove(entry)
            self._refresh(by_target)
            raise
        return record

    def set_strength(self, name: str, strength: float) -> None:
        """Re-patch one loaded adapter at a new strength (recomputed from the backups, no drift)."""
        entry = self._entry(name)
        entry.record = replace(entry.record, strength=checked_strength(strength, entry.record.path))
        self._refresh(entry.by_target)

    def unload(self, name: str | None = None) -> None:
        """Remove one adapter (or all); weights no other adapter touches get their backups back exactly."""
        entries = list(self._entries) if name is None else [self._entry(name)]
        touched: set[str] = set()
        for entry in entries:
            self._entries.remove(entry)
            touched |= set(entry.by_target)
        self._refresh(touched)

    # --- internals ---------------------------------------------------------------------------
    def _entry(self, name: str) -> _Entry:
        for entry in self._entries:
            if entry.record.name == name:
                return entry
        loaded = ", ".join(repr(e.record.name) for e in self._entries) or "none"
        raise ConfigError(f"no adapter named {name!r} is loaded (loaded: {loaded})")

    def _check_fits(self, adapter: AdapterFile, by_target: dict) -> None:
        """Every patched tensor exists here with the shape the adapter builds, or nothing is touched."""
        params = dict(self.decoder.named_parameters())
        missing = [target for target in by_target if target not in params]
        if missing:
            layers = len(getattr(self.decoder, "layers", ()))
            raise ModelLoadError(
                f"{len(missing)} of the adapter's {len(by_target)} modules are not in this decoder "
                f"({layers} layers), e.g. {', '.join(t.removesuffix('.weight') for t in sorted(missing)[:3])}; "
                "it was made for another base model",
                path=adapter.path, fix="load it into the model size (2B or XL) it was trained on")
        bad = [(target, why) for target, param in params.items() if target in by_target  # in module order
               and (why := by_target[target].mismatch(param.shape)) is not None]
        if bad:
            target, why = bad[0]
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise ModelLoadError(f"shape mismatch at {target}: {why}{more}; made for another base model",
                                 path=adapter.path, fix="load it into the model it was trained on")

    def _warnings(self, adapter: AdapterFile) -> tuple[str, ...]:
        notes = list(adapter.warnings)
        trained_on = adapter.metadata.get("variant")
        if trained_on and self.variant and "custom" not in (trained_on, self.variant) and trained_on != self.variant:
            notes.append(f"{adapter.path.name} was trained on the {trained_on} model but is loaded on {self.variant}; "
                         "it may sound off")
        options = getattr(self.decoder, "options", None)
        running = getattr(options, "rope_dtype", None)
        trained, how = trained_rope_dtype(adapter.metadata)
        if running is not None and running != trained and _low_precision(self.decoder):
            notes.append(f"{adapter.path.name} was trained with {trained.value} RoPE frequencies ({how}) but the model "
                         f"runs with {running.value} ones; --rope-dtype {trained.value} (or auto) plays it as trained")
        return tuple(notes)

    @torch.no_grad()
    def _refresh(self, targets) -> None:
        """Recompute each target from its backup through every loaded adapter that touches it."""
        params = dict(self.decoder.named_parameters())
        for target in targets:
            param = params[target]
            chain = [(e.by_target[target], e.record.strength) for e in self._entries if target in e.by_target]
            if not chain:
                if target in self._backups:
                    param.copy_(self._backups.pop(target))
                continue
            if target not in self._backups:
                self._backups[target] = param.detach().to("cpu", copy=True)
            weight = self._backups[target].to(param.device, torch.float32)
            for delta, strength in chain:
                weight = delta.merged_weight(weight, strength)
            param.copy_(weight)


def _default_name(path: Path) -> str:
    """The folder name for a standard file (`final/lokr_weights.safetensors` -> `final`), else the file stem."""
    path = path.expanduser()
    if path.is_file():
        return path.parent.resolve().name if path.name in STANDARD_FILES else path.stem
    return path.resolve().name


def _low_precision(decoder: nn.Module) -> bool:
    """The RoPE conventions differ only when the decoder computes below fp32."""
    return any(p.dtype != torch.float32 for p in decoder.parameters())


def _require_plain(decoder: nn.Module) -> None:
    try:
        require_plain_decoder(decoder)
    except ValueError as err:
        raise ConfigError(f"cannot patch adapters into this decoder: {err}",
                          fix="weight patching is for a plain decoder; load a fresh model") from err
