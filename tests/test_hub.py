"""The parts of a stream hub that need no server (the rest: test_consumers.py)."""

from __future__ import annotations

from types import SimpleNamespace

from reactive_blocks import BlockRef, DependencyIndex, ReactiveBus
from reactive_blocks.streams.engine import MIN_DEADLINES, Client, Delivery, Frames
from reactive_blocks.streams.hubs import Hubs

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


def test_a_message_never_exceeds_the_limit_the_largest_blocks_become_reloads():
    frames = Frames(7, max_bytes=100, reload_event="reactive-reload")
    small, big = "s" * 20, "b" * 70
    body = frames.body([(BODY, big), (TITLE, small)])
    assert body == (
        b"event: reactive-reload\ndata: body\n\n"
        b"event: title\nid: 7\ndata: " + small.encode() + b"\n\n"
    )
    assert frames.oversized
    # Alone, the same block fits and is sent whole.
    alone = Frames(8, max_bytes=100).body([(BODY, big)])
    assert alone == b"event: body\nid: 8\ndata: " + big.encode() + b"\n\n"


def test_the_last_frame_keeps_the_id_when_it_becomes_a_reload():
    frames = Frames(9, max_bytes=70)
    body = frames.body([(TITLE, "t"), (BODY, "b" * 100)])
    assert (
        body
        == b"event: title\ndata: t\n\nevent: reactive-reload\nid: 9\ndata: body\n\n"
    )


def _client(number: int) -> Client:
    consumer = SimpleNamespace(
        connection_id=f"tab-{number}", connection=SimpleNamespace(user_id=None)
    )
    return Client(consumer, _ignore, lambda: None, None, None)


async def _ignore(message: object) -> None:
    pass


def test_a_hub_that_never_empties_forgets_the_clients_that_left():
    """A popular page always has a viewer, so its hub lives on while thousands of
    streams come and go: their lifetimes (and what each client holds) must not
    stay until the lifetime runs out, an hour later."""
    delivery = Delivery(Hubs(ReactiveBus(), DependencyIndex()), ("page",), "a page")
    stays = _client(0)
    delivery._admit(stays, None)
    for number in range(1, 1000):
        passing = _client(number)
        delivery._admit(passing, None)
        delivery.leave(passing)
    assert len(delivery._deadlines) <= 2 * len(delivery.clients) + MIN_DEADLINES
    assert stays in [entry[2] for entry in delivery._deadlines]
