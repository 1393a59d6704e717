"""`loop.compile`: the compiled decoder trains to the eager losses; without a toolchain it warns and trains eagerly.

COMPILED_LOSS_RTOL: Inductor fuses and reorders the elementwise float work, so compiled and eager
losses differ by float rounding only. Measured on the tiny bundle (fp32, 2-core CPU): relative
differences of the first steps' losses at most ~1e-6; 1e-4 is far above that and far below what
a wrong kernel does (a wrong graph moves the loss by percent).
"""

from __future__ import annotations

import pytest

from acetune.events import StepDone, Warned
from acetune.train import session

from test_training import events_of, make_config

COMPILED_LOSS_RTOL = 1e-4


def _losses(events) -> list[float]:
    return [e.loss for e in events if isinstance(e, StepDone)]


def test_a_compiled_run_learns_what_the_eager_run_learns(train_cache, tiny_bundle, tmp_path, monkeypatch):
    compiled_layers: list[int] = []
    real = session.compile_layers
    monkeypatch.setattr(session, "compile_layers", lambda decoder: compiled_layers.append(real(decoder)))
    changes = dict(loop=dict(epochs=1, seed=3, eval_timesteps=(0.5,)))
    eager = _losses(events_of(make_config(train_cache, tiny_bundle, tmp_path / "eager", **changes)))
    compiled_config = make_config(train_cache, tiny_bundle, tmp_path / "compiled",
                                  loop=dict(epochs=1, seed=3, eval_timesteps=(0.5,), compile=True))
    compiled = _losses(events_of(compiled_config))
    assert compiled_layers == [2]  # the compiled run compiled both tiny layers; the eager run none
    assert len(compiled) == len(eager) == 3
    assert compiled == pytest.approx(eager, rel=COMPILED_LOSS_RTOL)


def test_without_a_toolchain_the_run_warns_and_trains_eagerly(train_cache, tiny_bundle, tmp_path, monkeypatch):
    monkeypatch.setattr(session, "toolchain_problem", lambda device: "InvalidCxxCompiler: no working C++ compiler")
    monkeypatch.setattr(session, "compile_layers", lambda decoder: pytest.fail("compiled without a toolchain"))
    config = make_config(train_cache, tiny_bundle, tmp_path / "run", loop=dict(epochs=1, eval_timesteps=(0.5,),
                                                                              compile=True))
    events = events_of(config)
    warned = [e for e in events if isinstance(e, Warned) and e.code == "compile"]
    assert len(warned) == 1 and "no working C++ compiler" in warned[0].text and "loop.compile" in warned[0].text
    assert len(_losses(events)) == 3
