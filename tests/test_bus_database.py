"""DatabaseBus in one process: events go through the Change table and come back."""

from __future__ import annotations

import asyncio
import threading

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


async def test_a_change_lost_to_a_full_outbox_makes_this_process_resync():
    bus = DatabaseBus(outbox=2, poll_interval=0.05)
    writing, release = threading.Event(), threading.Event()
    insert = bus._insert

    def stuck(batch):  # the database is slow: the writer waits here
        writing.set()
        release.wait(10)
        insert(batch)

    bus._insert = stuck
    bus.position()  # starts the reader: the subscription starts after it
    await eventually(lambda: bus.epoch == "db")
    subscription = bus.subscribe_shared("doc-1")
    try:
        bus.emit_sync(ChangeEvent("doc-1", frozenset({"doc.a"})))
        assert await asyncio.to_thread(writing.wait, 10)
        for name in ("b", "c", "d"):  # two fit the outbox; one is lost
            bus.emit_sync(ChangeEvent("doc-1", frozenset({f"doc.{name}"})))
        assert bus.outbox_dropped_count == 1
        await eventually(lambda: subscription.started)
        release.set()
        batch = await asyncio.wait_for(subscription.next_batch(), 10)
        assert batch is not None
        assert batch.lagged  # the page resyncs: what was lost is rendered anyway
    finally:
        release.set()
        subscription.close()
        bus.close()


async def test_a_row_that_commits_after_a_later_one_resyncs_its_scope(bus):
    bus.position()
    await eventually(lambda: bus._cursor is not None)
    top = bus._cursor
    subscription = bus.subscribe_shared("doc-9")
    event = '{"p": ["doc.title"], "o": null, "a": null, "r": false}'
    # Row top+2 commits first; top+1 (another process's transaction) later.
    await asyncio.to_thread(
        Change.objects.create, pk=top + 2, scope="doc-8", event=event
    )
    await eventually(lambda: bus._cursor == top + 2)
    assert top + 1 in bus._gaps
    await asyncio.to_thread(
        Change.objects.create, pk=top + 1, scope="doc-9", event=event
    )
    batch = await asyncio.wait_for(subscription.next_batch(), 10)
    assert batch is not None
    assert batch.lagged
    subscription.close()


async def test_an_emptied_table_starts_a_new_numbering_and_nothing_is_skipped():
    event = '{"p": ["doc.title"], "o": null, "a": null, "r": false}'
    for _ in range(3):  # changes made before this process started
        await asyncio.to_thread(Change.objects.create, scope="doc-1", event=event)
    bus = DatabaseBus(poll_interval=0.05)
    first = bus.subscribe("doc-1")
    await eventually(lambda: bus.epoch == "db")
    epoch = bus.epoch
    # manage.py flush, or a restored database: ids start again from 1.
    await asyncio.to_thread(flush_changes)
    await eventually(lambda: bus.epoch != epoch)
    later = bus.subscribe("doc-2")
    bus.emit_sync(ChangeEvent("doc-2", frozenset({"doc.title"})))
    try:
        received = await asyncio.wait_for(later.__anext__(), 10)
        assert received.changed_paths == {"doc.title"}
    finally:
        first.close()
        later.close()
        bus.close()


async def test_a_logout_in_one_process_ends_its_streams_in_the_others(bus):
    other = DatabaseBus(poll_interval=0.05)  # another process on the same table
    try:
        bus.position()
        await eventually(lambda: bus.epoch == "db")
        watching = bus.subscribe("doc-1", ConnectionInfo("tab-1", "7", session="s1"))
        staying = bus.subscribe("doc-1", ConnectionInfo("tab-2", "8", session="s2"))
        other.close_session("s1")  # Django's user_logged_out, over there
        await eventually(lambda: watching.close_reason is not None)
        assert staying.close_reason is None
        hub = bus.subscribe_shared("doc-1")  # a stream hub's subscription
        other.recheck("doc-1")  # bus.recheck() over there: access is asked again
        await eventually(hub.take_recheck)
        hub.close()
    finally:
        other.close()


def test_a_table_that_cannot_be_written_is_said_once_and_nothing_is_lost(
    caplog, monkeypatch
):
    monkeypatch.setattr("reactive_blocks.bus.database.RETRY_SECONDS", 0.01)
    bus = DatabaseBus()
    insert, failures = bus._insert, [1, 2, 3]

    def failing(batch):  # the table is not there yet, three times
        if failures:
            failures.pop()
            raise RuntimeError("no such table: reactive_blocks_change")
        insert(batch)

    bus._insert = failing
    try:
        bus.emit_sync(ChangeEvent("doc-1", frozenset({"doc.title"})))
        assert bus.flush(timeout=10)
    finally:
        bus.close()
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert "Has `manage.py migrate` created it?" in errors[0].getMessage()
    assert any("works again" in r.getMessage() for r in caplog.records)
    assert Change.objects.count() == 1


def flush_changes() -> None:
    """What ``manage.py flush`` does to the table: rows gone, ids from 1 again."""
    from django.core.management.color import no_style
    from django.db import connection

    statements = connection.ops.sql_flush(
        no_style(), [Change._meta.db_table], reset_sequences=True
    )
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


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
