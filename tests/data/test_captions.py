"""Caption vs genre choice, the seeded genre set, and activation-tag positions (training.md §1.5)."""

from __future__ import annotations

import random

import pytest

from acetune.data.captions import TagConfig, apply_tag, genre_indices, select_caption
from acetune.data.labels import SampleLabels
from acetune.errors import LabelError


@pytest.mark.parametrize(("text", "tag", "position", "expected"), [
    ("piano ballad", "zx", "prepend", "zx, piano ballad"),
    ("piano ballad", "zx", "append", "piano ballad, zx"),
    ("piano ballad", "zx", "replace", "zx"),
    ("", "zx", "append", "zx"),
    ("piano ballad", "", "replace", "piano ballad"),
    ("", "", "prepend", ""),
])
def test_apply_tag(text, tag, position, expected):
    assert apply_tag(text, tag, position) == expected


def test_bad_tag_position():
    with pytest.raises(LabelError, match="middle"):
        TagConfig("zx", "middle")


@pytest.mark.parametrize(("n", "ratio"), [(10, 30), (7, 50), (25, 100), (4, 0), (3, 33)])
def test_genre_indices_match_seeded_shuffle(n, ratio):
    order = list(range(n))
    random.Random(42).shuffle(order)
    expected = set(order[: int(n * ratio / 100)])
    assert genre_indices(n, ratio) == expected
    assert len(expected) == int(n * ratio / 100)


def test_genre_indices_pinned_for_seed_42():
    # random.Random(42).shuffle(list(range(10))) == [7, 3, 2, 8, 5, 6, 9, 4, 0, 1]
    assert genre_indices(10, 30) == {7, 3, 2}
    assert genre_indices(10, 30, seed=1) != {7, 3, 2}


def test_select_caption_order_of_rules():
    tag = TagConfig("ds", "prepend")
    plain = SampleLabels(caption="warm synths", genre="synthwave")
    assert select_caption(plain, 0, set(), tag) == "ds, warm synths"
    assert select_caption(plain, 0, {0}, tag) == "ds, synthwave"
    assert select_caption(SampleLabels(caption="c", genre="g", prompt_override="caption"), 0, {0}, tag) == "ds, c"
    assert select_caption(SampleLabels(caption="c", genre="g", prompt_override="genre"), 0, set(), tag) == "ds, g"
    # a genre pick with no genre uses the caption
    assert select_caption(SampleLabels(caption="c"), 0, {0}, tag) == "ds, c"
    # the sample's own tag replaces the dataset tag; the position stays the dataset's
    own = SampleLabels(caption="c", custom_tag="mine")
    assert select_caption(own, 0, set(), TagConfig("ds", "append")) == "c, mine"
    assert select_caption(SampleLabels(), 0, set(), TagConfig()) == ""
