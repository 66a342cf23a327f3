"""Heartbeats, stream lifetime and queue overflow, with tiny settings on a real server."""

from __future__ import annotations

import pytest

from tests.live_project import Live, live_project
from tests.sse_client import SSEStream

pytestmark = pytest.mark.timeout(120)

HEARTBEAT = 0.2
LIFETIME = 2.0


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Live:
    with live_project(
        tmp_path_factory.mktemp("limits"),
        LIVE_HEARTBEAT=str(HEARTBEAT),
        LIVE_MAX_SECONDS=str(LIFETIME),
        LIVE_MAXSIZE="2",
    ) as project:
        yield project


@pytest.fixture(autouse=True)
def _fresh_documents(live):
    live.reset()


async def test_idle_stream_gets_heartbeat_comments(live):
    stream = await SSEStream.open(live.page(1)[0])
    first = await stream.next_event(comments=True)
    assert first.comments == ["ping"]
    assert first.raw == b": ping\n\n"
    second = await stream.next_event(comments=True)
    assert second.comments == ["ping"]
    await stream.close()


async def test_stream_ends_after_its_lifetime_asking_to_reconnect(live):
    stream = await SSEStream.open(live.page(1)[0])
    assert stream.status == 200
    events = await stream.events_until("reactive-reconnect", timeout=LIFETIME * 5)
    assert events[-1].raw == b"event: reactive-reconnect\ndata: \n\n"
    assert await stream.read_rest() == b""
    # The consumer stopped with its response, once: not waiting for a disconnect.
    stats = live.wait_for(lambda s: s["subscribers"] == 0 and s["disconnects"])
    assert len(stats["disconnects"]) == 1


async def test_lifetime_end_without_access_tells_htmx_to_stop(live):
    cookie, _ = live.login("alice")
    stream = await SSEStream.open(live.page(1, cookie)[0], {"Cookie": cookie})
    assert stream.status == 200
    live.change(set={"readers": ["bob"]}, paths=[])  # alice loses access
    events = await stream.events_until("reactive-close", timeout=LIFETIME * 5)
    assert events[-1].raw == b"event: reactive-close\ndata: \n\n"
    assert await stream.read_rest() == b""


async def test_overflow_resyncs_every_block(live):
    stream = await SSEStream.open(live.page(1)[0])
    live.change(set={"title": "burst"}, paths=["doc.title"], repeat=50)
    seen: dict[str, str] = {}
    while set(seen) != {"title", "content", "greeting", "fragile"}:
        event = await stream.next_event()
        seen[event.event] = event.data
    # content and fragile were not in the changed paths: only a resync sends them.
    assert seen == {
        "title": "burst",
        "content": "Body",
        "greeting": "Hello guest, this is burst",
        "fragile": "intact",
    }
    await stream.close()
