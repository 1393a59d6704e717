"""Seeds beyond what the random generators take are named config errors; a huge value is echoed cut short."""

from __future__ import annotations

import pytest

from acetune.config import config_from_dict, validate
from acetune.config.validation import SEED_MAX, check_seed
from acetune.errors import ConfigError

BEYOND_INT64 = 99999999999999999999


@pytest.mark.parametrize("data, key", [
    ({"loop": {"seed": BEYOND_INT64}}, "loop.seed"),
    ({"loop": {"seed": -1}}, "loop.seed"),
    ({"loop": {"eval_seed": SEED_MAX + 1}}, "loop.eval_seed"),
    ({"audition": {"seeds": [42, BEYOND_INT64]}}, "audition.seeds"),
])
def test_a_seed_out_of_range_names_the_key_and_the_range(data, key):
    with pytest.raises(ConfigError, match=rf"^{key.replace('.', '[.]')} = .* must (each )?be in \[0, {SEED_MAX}\]"):
        validate(config_from_dict(data, source="test"))


def test_the_seed_range_ends_are_accepted():
    validate(config_from_dict({"loop": {"seed": 0, "eval_seed": SEED_MAX}, "audition": {"seeds": [0, SEED_MAX]}},
                              source="test"))
    check_seed(SEED_MAX, "--seed")


def test_a_command_line_seed_is_checked_by_the_same_rule():
    with pytest.raises(ConfigError, match=rf"--seed {BEYOND_INT64} must be in") as err:
        check_seed(BEYOND_INT64, "--seed")
    assert err.value.fix


def test_a_huge_wrong_typed_value_is_echoed_cut_short():
    with pytest.raises(ConfigError, match="adapter.rank must be an integer, got 'xxx") as err:
        config_from_dict({"adapter": {"rank": "x" * 5_000_000}}, source="big.toml")
    assert len(str(err.value)) < 400 and "5,000,000 characters" in str(err.value)


def test_a_huge_impossible_value_is_echoed_cut_short():
    with pytest.raises(ConfigError, match="adapter.bias = 'nnn") as err:
        validate(config_from_dict({"adapter": {"bias": "n" * 1_000_000}}, source="test"))
    assert len(str(err.value)) < 400
