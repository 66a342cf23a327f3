"""The row moves of rows/patch.py, applied as reactive.js applies them."""

from __future__ import annotations

import json
import random

import pytest

from reactive_blocks.rows.patch import RowsPatch, row_ops


def apply(shown: list[str], message: RowsPatch) -> list[str]:
    """reactive.js's order of operations, on a list of ids."""
    if not message:
        return shown
    data = json.loads(message)
    page = [key for key in shown if key not in data.get("remove", [])]
    for put in data.get("put", []):
        key = put["id"]
        if "after" in put or "before" in put:
            if key in page:
                page.remove(key)
            anchor = page.index(put.get("after") or put["before"])
            page.insert(anchor + 1 if "after" in put else anchor, key)
        else:
            assert key in page, "a row put in place must be on the page"
    return page


def test_one_changed_row_is_put_in_place_alone():
    message = row_ops("list", ["a", "b", "c"], ["a", "b", "c"], {"b": "<li id=b>"})
    assert json.loads(message) == {
        "block": "list",
        "put": [{"id": "b", "html": "<li id=b>"}],
    }


def test_nothing_changed_is_an_empty_message():
    assert row_ops("list", ["a", "b"], ["a", "b"], {}) == ""


def test_a_new_first_row_goes_before_the_first_unmoved_one():
    message = row_ops("list", ["a", "b"], ["n", "a", "b"], {"n": "<li id=n>"})
    assert json.loads(message)["put"] == [
        {"id": "n", "before": "a", "html": "<li id=n>"}
    ]


def test_a_move_sends_no_html():
    message = row_ops("list", ["a", "b", "c", "d"], ["a", "c", "d", "b"], {})
    assert json.loads(message)["put"] == [{"id": "b", "after": "d"}]


def test_without_an_unmoved_row_the_block_is_sent_whole():
    assert row_ops("list", ["a"], ["b"], {"b": "<li id=b>"}) is None
    assert row_ops("list", [], ["b"], {"b": "<li id=b>"}) is None


def test_a_new_row_that_was_not_rendered_is_refused():
    assert row_ops("list", ["a"], ["a", "b"], {}) is None


@pytest.mark.parametrize("seed", range(200))
def test_any_sequence_of_changes_is_reproduced(seed):
    rng = random.Random(seed)
    shown = [f"k{n}" for n in range(rng.randint(1, 30))]
    keys = list(shown)
    counter = 100
    for _ in range(rng.randint(1, 10)):
        action = rng.choice(["create", "delete", "move"])
        if action == "create":
            counter += 1
            keys.insert(rng.randint(0, len(keys)), f"k{counter}")
        elif action == "delete" and len(keys) > 1:
            keys.pop(rng.randrange(len(keys)))
        elif keys:
            keys.insert(
                rng.randint(0, len(keys) - 1), keys.pop(rng.randrange(len(keys)))
            )
    rows = {key: f"<li id={key}>" for key in keys if key not in shown}
    message = row_ops("list", shown, keys, rows)
    if message is None:
        assert not set(shown) & set(keys)  # only when no row stays
        return
    assert apply(shown, message) == keys
