"""The parts of a stream hub that need no server (the rest: test_consumers.py)."""

from __future__ import annotations

from reactive_blocks import BlockRef
from reactive_blocks.streams.hub import Frames

TITLE = BlockRef("page.html", "title")
BODY = BlockRef("page.html", "body")


def test_a_frame_is_encoded_once_and_the_last_of_a_batch_carries_the_id():
    frames = Frames(42)
    html = "<b>T</b>"
    first = frames.body([(BODY, "B"), (TITLE, html)])
    assert first == b"event: body\ndata: B\n\nevent: title\nid: 42\ndata: <b>T</b>\n\n"
    again = frames.body([(TITLE, html)])
    assert again == b"event: title\nid: 42\ndata: <b>T</b>\n\n"
    assert frames.body([(TITLE, html)]) is again  # the same bytes for every viewer


def test_another_render_of_a_block_gets_its_own_frame():
    frames = Frames(1)
    assert frames.body([(TITLE, "one")]) != frames.body([(TITLE, "two")])
