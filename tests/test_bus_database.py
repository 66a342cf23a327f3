"""DatabaseBus in one process: events go through the Change table and come back."""

from __future__ import annotations

import asyncio

import pytest

from reactive_blocks import ChangeEvent, ConnectionInfo, DatabaseBus
from reactive_blocks.models import Change
from tests.waiting import eventually

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def bus():
    bus = DatabaseBus(poll_interval=0.05)
    yield bus
    bus.close()


async def test_an_event_makes_the_round_trip_through_the_table(bus):
    subscription = bus.subscribe("doc-1", ConnectionInfo("tab-2", user_id="7"))
    event = ChangeEvent(
        "doc-1",
        frozenset({"doc.title"}),
        origin="tab",
        audience=frozenset({"7"}),
        recheck=True,
    )
    bus.emit_sync(event)
    received = await asyncio.wait_for(subscription.__anext__(), 10)
    assert received == event
    row = await asyncio.to_thread(lambda: Change.objects.get())
    assert bus.revision("doc-1") == row.pk
    subscription.close()


async def test_other_scopes_are_not_delivered(bus):
    subscription = bus.subscribe("doc-1")
    bus.emit_sync(ChangeEvent("doc-2", frozenset({"doc.title"})))
    bus.emit_sync(ChangeEvent("doc-1", frozenset({"doc.content"})))
    received = await asyncio.wait_for(subscription.__anext__(), 10)
    assert received.changed_paths == {"doc.content"}
    subscription.close()


def test_flush_waits_for_the_writes(bus):
    for n in range(50):
        bus.emit_sync(ChangeEvent(f"doc-{n}", frozenset({"doc.title"})))
    assert bus.flush(timeout=10)
    assert Change.objects.count() == 50
    assert bus.written_count == 50


def test_a_full_outbox_drops_the_oldest_and_counts_it():
    bus = DatabaseBus(outbox=2)
    try:
        with bus._pending:  # the writer cannot take anything meanwhile
            for n in range(5):
                bus._outbox.append(ChangeEvent(f"doc-{n}", frozenset({"doc"})))
                if len(bus._outbox) == 2:
                    break
        for n in range(3):
            bus.emit_sync(ChangeEvent(f"late-{n}", frozenset({"doc"})))
        assert bus.flush(timeout=10)
        assert bus.outbox_dropped_count + bus.written_count >= 3
    finally:
        bus.close()


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("poll_interval", 0, ValueError),
        ("poll_interval", "1", TypeError),
        ("keep", 0, ValueError),
        ("using", "", TypeError),
    ],
)
def test_bad_options_are_refused_precisely(option, value, error):
    with pytest.raises(error, match=option):
        DatabaseBus(**{option: value})


async def test_a_process_that_starts_later_counts_every_scope_as_changed_up_to_then(
    bus,
):
    bus.emit_sync(ChangeEvent("doc-1", frozenset({"doc.title"})))
    assert await asyncio.to_thread(bus.flush, 10)
    top = (await asyncio.to_thread(Change.objects.get)).pk
    later = DatabaseBus(poll_interval=0.05)  # a server started after that save
    try:
        later.position()  # starts its reader
        await eventually(lambda: later.epoch == "db")
        # A page rendered before the restart, at a position before ``top``, is
        # behind: it resyncs instead of missing the change.
        assert later.revision("doc-1") == top
        assert later.revision("never-changed") == top
        assert later.position().sequence == top
    finally:
        later.close()
