from __future__ import annotations

import asyncio
import contextlib
import gc
import threading

import pytest

from reactive_blocks import ChangeEvent, CloseReason, ConnectionInfo, ReactiveBus
from tests.waiting import eventually

TIMEOUT = 5


def event(scope: str = "doc-1", *paths: str, **kwargs) -> ChangeEvent:
    return ChangeEvent(scope, frozenset(paths or {"doc.title"}), **kwargs)


async def receive(sub):
    return await asyncio.wait_for(anext(sub), TIMEOUT)


async def ended(sub) -> bool:
    try:
        await asyncio.wait_for(anext(sub), TIMEOUT)
    except StopAsyncIteration:
        return True
    return False


# Construction -----------------------------------------------------------------


@pytest.mark.parametrize("maxsize", [0, -1])
def test_maxsize_must_be_positive(maxsize):
    with pytest.raises(ValueError, match=f"maxsize must be at least 1, got {maxsize}"):
        ReactiveBus(maxsize=maxsize)


@pytest.mark.parametrize("maxsize", ["10", 1.5, True])
def test_maxsize_must_be_int(maxsize):
    with pytest.raises(TypeError, match="maxsize must be an int"):
        ReactiveBus(maxsize=maxsize)


def test_subscribe_validates_arguments():
    bus = ReactiveBus()
    with pytest.raises(ValueError, match="scope must be a non-empty string"):
        bus.subscribe("")
    with pytest.raises(
        TypeError, match="connection must be a ConnectionInfo or None, got str"
    ):
        bus.subscribe("doc-1", connection="tab-1")


def test_emit_sync_logs_non_events_instead_of_raising(caplog):
    bus = ReactiveBus()
    bus.emit_sync({"scope": "doc-1"})  # type: ignore[arg-type]
    assert bus.emitted_count == 0
    assert "emit_sync() takes a ChangeEvent, got dict" in caplog.text


# Emitting and receiving ---------------------------------------------------------


def test_emit_without_subscribers_counts_and_advances_revision():
    bus = ReactiveBus()
    bus.emit_sync(event())
    bus.emit_sync(event())
    bus.emit_sync(event("doc-2"))
    assert bus.emitted_count == 3
    assert bus.dropped_count == 0
    assert bus.revision("doc-1") == 2
    assert bus.revision("doc-2") == 3  # one sequence numbers every scope's events
    assert bus.revision("never") == 0
    assert bus.sequence == 3


async def test_subscriber_receives_its_scope_in_order():
    bus = ReactiveBus()
    sub = bus.subscribe("doc-1")
    assert sub.start_revision == 0
    bus.emit_sync(event("doc-1", "a"))
    bus.emit_sync(event("doc-2", "b"))
    await bus.emit(event("doc-1", "c", origin="tab-9"))
    first = await receive(sub)
    assert first.changed_paths == {"a"}
    assert sub.revision == 1
    second = await receive(sub)
    assert second.changed_paths == {"c"}
    assert second.origin == "tab-9"
    assert sub.revision == 3
    assert sub.delivered_count == 2


async def test_start_revision_reflects_earlier_events():
    bus = ReactiveBus()
    bus.emit_sync(event())
    bus.emit_sync(event())
    sub = bus.subscribe("doc-1")
    assert sub.start_revision == 2
    bus.emit_sync(event())
    await receive(sub)
    assert sub.revision == 3


async def test_waiting_subscriber_is_woken_by_another_thread():
    bus = ReactiveBus()
    sub = bus.subscribe("doc-1")
    waiting = asyncio.ensure_future(receive(sub))
    await asyncio.sleep(0)  # let it park on its waiter
    thread = threading.Thread(target=bus.emit_sync, args=(event("doc-1", "x"),))
    thread.start()
    got = await waiting
    thread.join()
    assert got.changed_paths == {"x"}


async def test_every_subscriber_of_a_scope_gets_each_event():
    bus = ReactiveBus()
    subs = [bus.subscribe("doc-1") for _ in range(3)]
    bus.emit_sync(event("doc-1", "x"))
    for sub in subs:
        assert (await receive(sub)).changed_paths == {"x"}


async def test_next_batch_takes_everything_queued():
    bus = ReactiveBus()
    sub = bus.subscribe("doc-1")
    for path in ("a", "b", "c"):
        bus.emit_sync(event("doc-1", path))
    batch = await asyncio.wait_for(sub.next_batch(), TIMEOUT)
    assert batch is not None
    assert [e.changed_paths for e in batch.events] == [{"a"}, {"b"}, {"c"}]
    assert batch.revision == 3
    assert batch.lagged is False
    assert sub.delivered_count == 3


async def test_next_batch_returns_none_when_closed():
    bus = ReactiveBus()
    sub = bus.subscribe("doc-1")
    pending = asyncio.ensure_future(sub.next_batch())
    await asyncio.sleep(0)
    bus.close("doc-1")
    assert await asyncio.wait_for(pending, TIMEOUT) is None


async def test_one_consumer_per_subscription():
    bus = ReactiveBus()
    sub = bus.subscribe("doc-1")
    first = asyncio.ensure_future(anext(sub))
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="Another task is already waiting"):
        await anext(sub)
    first.cancel()


# Back-pressure ---------------------------------------------------------------------


async def test_overflow_drops_oldest_and_marks_subscriber_lagged():
    bus = ReactiveBus(maxsize=2)
    sub = bus.subscribe("doc-1")
    for n in range(5):
        bus.emit_sync(event("doc-1", f"p{n}"))
    assert bus.dropped_count == 3
    assert sub.dropped_count == 3
    assert sub.lagged is True
    assert (await receive(sub)).changed_paths == {"p3"}
    assert (await receive(sub)).changed_paths == {"p4"}
    assert sub.revision == 5
    assert sub.take_lagged() is True
    assert sub.take_lagged() is False
    assert sub.lagged is False


async def test_overflow_is_reported_in_the_next_batch():
    bus = ReactiveBus(maxsize=1)
    sub = bus.subscribe("doc-1")
    bus.emit_sync(event("doc-1", "a"))
    bus.emit_sync(event("doc-1", "b"))
    batch = await sub.next_batch()
    assert batch is not None
    assert batch.lagged is True
    assert [e.changed_paths for e in batch.events] == [{"b"}]
    bus.emit_sync(event("doc-1", "c"))
    batch = await sub.next_batch()
    assert batch is not None
    assert batch.lagged is False


async def test_slow_subscriber_does_not_affect_others():
    bus = ReactiveBus(maxsize=1)
    slow = bus.subscribe("doc-1")
    fast = bus.subscribe("doc-1")
    for n in range(3):
        bus.emit_sync(event("doc-1", f"p{n}"))
        assert (await receive(fast)).changed_paths == {f"p{n}"}
    assert fast.dropped_count == 0
    assert slow.dropped_count == 2
    assert bus.dropped_count == 2


# Audience ----------------------------------------------------------------------------


async def test_audience_reaches_only_listed_users():
    bus = ReactiveBus()
    alice = bus.subscribe("doc-1", ConnectionInfo("t1", user_id="alice"))
    bob = bus.subscribe("doc-1", ConnectionInfo("t2", user_id="bob"))
    anonymous = bus.subscribe("doc-1", ConnectionInfo("t3"))
    no_connection = bus.subscribe("doc-1")
    bus.emit_sync(event("doc-1", "secret", audience={"alice"}))
    bus.emit_sync(event("doc-1", "public"))
    assert (await receive(alice)).changed_paths == {"secret"}
    assert (await receive(alice)).changed_paths == {"public"}
    for sub in (bob, anonymous, no_connection):
        assert (await receive(sub)).changed_paths == {"public"}
        assert sub.revision == 2  # revisions count every event of the scope


async def test_empty_audience_reaches_nobody():
    bus = ReactiveBus()
    sub = bus.subscribe("doc-1", ConnectionInfo("t1", user_id="alice"))
    bus.emit_sync(event("doc-1", "a", audience=set()))
    bus.emit_sync(event("doc-1", "b"))
    assert (await receive(sub)).changed_paths == {"b"}


# Closing -----------------------------------------------------------------------------


async def test_close_scope_ends_iteration_while_waiting():
    bus = ReactiveBus()
    sub = bus.subscribe("doc-1")
    other = bus.subscribe("doc-2")
    received = []

    async def consume():
        async for ev in sub:
            received.append(ev)

    task = asyncio.ensure_future(consume())
    bus.emit_sync(event("doc-1", "a"))
    await eventually(lambda: bool(received))
    bus.close("doc-1")
    await asyncio.wait_for(task, TIMEOUT)
    assert [e.changed_paths for e in received] == [{"a"}]
    assert sub.close_reason is CloseReason.SCOPE_CLOSED
    assert other.close_reason is None
    assert bus.subscriber_count == 1


async def test_close_discards_queued_events():
    bus = ReactiveBus()
    sub = bus.subscribe("doc-1")
    bus.emit_sync(event())
    bus.close("doc-1")
    assert await ended(sub)


async def test_close_twice_is_harmless_and_resubscribe_works():
    bus = ReactiveBus()
    sub = bus.subscribe("doc-1")
    bus.close("doc-1")
    bus.close("doc-1")
    bus.close("unknown")
    sub.close()
    assert await ended(sub)
    again = bus.subscribe("doc-1")
    bus.emit_sync(event("doc-1", "x"))
    assert (await receive(again)).changed_paths == {"x"}
    assert bus.subscriber_count == 1


async def test_close_all_ends_every_scope():
    bus = ReactiveBus()
    subs = [bus.subscribe(f"doc-{n}") for n in range(3)]
    bus.close()
    for sub in subs:
        assert await ended(sub)
        assert sub.close_reason is CloseReason.BUS_CLOSED
    assert bus.subscriber_count == 0


async def test_close_user_ends_only_that_user():
    bus = ReactiveBus()
    a1 = bus.subscribe("doc-1", ConnectionInfo("t1", user_id="7"))
    a2 = bus.subscribe("doc-2", ConnectionInfo("t2", user_id="7"))
    b = bus.subscribe("doc-1", ConnectionInfo("t3", user_id="8"))
    anon = bus.subscribe("doc-1")
    assert bus.close_user("7", scope="doc-2") == 1
    assert a2.close_reason is CloseReason.USER_CLOSED
    assert a1.close_reason is None
    assert bus.close_user("7") == 1
    assert bus.close_user("7") == 0
    assert await ended(a1)
    assert b.close_reason is None
    assert anon.close_reason is None
    assert bus.presence("doc-1") == (b.connection,)


def test_close_user_rejects_empty_scope():
    bus = ReactiveBus()
    sub = bus.subscribe("doc-1", ConnectionInfo("t1", user_id="7"))
    with pytest.raises(ValueError, match="scope must be a non-empty string"):
        bus.close_user("7", scope="")
    assert sub.close_reason is None


def test_close_user_needs_str():
    with pytest.raises(
        TypeError, match=r"user_id must be a str, got int: 7\. Use str\(user\.pk\)"
    ):
        ReactiveBus().close_user(7)


# Presence and counters -------------------------------------------------------------


def test_presence_lists_connections_in_subscription_order():
    bus = ReactiveBus()
    c1 = ConnectionInfo("t1", user_id="7")
    c2 = ConnectionInfo("t2")
    s1 = bus.subscribe("doc-1", c1)
    s2 = bus.subscribe("doc-1")
    s3 = bus.subscribe("doc-1", c2)
    assert bus.presence("doc-1") == (c1, c2)
    assert bus.presence("doc-2") == ()
    assert bus.subscriber_count == 3
    s1.close()
    assert bus.presence("doc-1") == (c2,)
    del s2, s3


async def test_break_unsubscribes_at_once():
    bus = ReactiveBus()
    bus_sub = bus.subscribe("doc-1", ConnectionInfo("t1"))
    bus.emit_sync(event())
    async for _ in bus_sub:
        break
    del bus_sub
    assert bus.subscriber_count == 0
    assert bus.presence("doc-1") == ()


async def test_break_from_inline_subscription_unsubscribes():
    bus2 = ReactiveBus()

    async def first():
        async for ev in bus2.subscribe("doc-1", ConnectionInfo("t1")):
            return ev
        return None

    task = asyncio.ensure_future(first())
    await eventually(lambda: bus2.subscriber_count == 1)
    bus2.emit_sync(event())
    assert await task is not None
    assert bus2.subscriber_count == 0
    assert bus2.presence("doc-1") == ()


async def test_cancel_while_waiting_unsubscribes_at_once():
    bus = ReactiveBus()
    sub = bus.subscribe("doc-1", ConnectionInfo("t1"))
    task = asyncio.ensure_future(anext(sub))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sub.close_reason is CloseReason.LEFT
    assert bus.subscriber_count == 0
    assert bus.presence("doc-1") == ()


async def test_exception_in_loop_body_unsubscribes():
    bus = ReactiveBus()

    async def consume():
        async for _ in bus.subscribe("doc-1", ConnectionInfo("t1")):
            raise ValueError("boom")

    task = asyncio.ensure_future(consume())
    await eventually(lambda: bus.subscriber_count == 1)
    bus.emit_sync(event())
    with pytest.raises(ValueError, match="boom"):
        await task
    gc.collect()  # the traceback may hold the frame until collected
    assert bus.subscriber_count == 0
    assert bus.presence("doc-1") == ()


async def test_async_with_closes_subscription():
    bus = ReactiveBus()
    async with bus.subscribe("doc-1") as sub:
        assert bus.subscriber_count == 1
    assert sub.close_reason is CloseReason.LEFT
    assert bus.subscriber_count == 0


async def test_next_batch_timeout_returns_empty_batch_and_keeps_subscription():
    bus = ReactiveBus()
    sub = bus.subscribe("doc-1")
    quiet = await sub.next_batch(timeout=0.01)
    assert quiet is not None
    assert quiet.events == ()
    assert sub.close_reason is None
    assert bus.subscriber_count == 1
    pending = asyncio.ensure_future(sub.next_batch(timeout=TIMEOUT))
    await asyncio.sleep(0)
    bus.emit_sync(event("doc-1", "x"))
    batch = await pending
    assert batch is not None
    assert [e.changed_paths for e in batch.events] == [{"x"}]


async def test_next_batch_timeout_sees_close():
    bus = ReactiveBus()
    sub = bus.subscribe("doc-1")
    pending = asyncio.ensure_future(sub.next_batch(timeout=TIMEOUT))
    await asyncio.sleep(0)
    bus.close("doc-1")
    assert await pending is None


def test_counters_after_cancel_and_close_are_exact():
    bus = ReactiveBus(maxsize=1)
    subs = [bus.subscribe("doc-1") for _ in range(4)]
    bus.emit_sync(event())
    bus.emit_sync(event())
    subs[0].close()
    bus.emit_sync(event())
    assert bus.emitted_count == 3
    # 4 subscribers overflowed at the second event, 3 at the third.
    assert bus.dropped_count == 7
    assert bus.subscriber_count == 3


# Many loops and threads -------------------------------------------------------------


def test_subscribers_on_two_loops_in_two_threads_receive_on_their_own_loop():
    bus = ReactiveBus()
    ready = threading.Barrier(3)
    results: dict[str, tuple[list[frozenset[str]], bool]] = {}

    def run(name: str) -> None:
        async def main() -> None:
            loop = asyncio.get_running_loop()
            sub = bus.subscribe("doc-1")
            got = []
            ready.wait()
            on_own_loop = True
            async for ev in sub:
                on_own_loop &= asyncio.get_running_loop() is loop
                got.append(ev.changed_paths)
                if len(got) == 3:
                    break
            results[name] = (got, on_own_loop)

        asyncio.run(main())

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    ready.wait()
    for n in range(3):
        bus.emit_sync(event("doc-1", f"p{n}"))
    for t in threads:
        t.join(TIMEOUT)
    expected = [frozenset({f"p{n}"}) for n in range(3)]
    assert results == {"a": (expected, True), "b": (expected, True)}
    assert bus.subscriber_count == 0


def test_subscriber_on_closed_loop_does_not_hurt_emitter_or_others():
    bus = ReactiveBus()
    loop = asyncio.new_event_loop()
    stranded = bus.subscribe("doc-1")
    parked = loop.create_task(anext(stranded))
    loop.run_until_complete(asyncio.sleep(0))  # park it on its waiter
    loop.close()

    async def healthy():
        sub = bus.subscribe("doc-1")
        bus.emit_sync(event("doc-1", "x"))  # must not raise
        return await receive(sub)

    assert asyncio.run(healthy()).changed_paths == {"x"}
    assert stranded.close_reason is CloseReason.LOOP_CLOSED
    assert bus.subscriber_count == 0
    del parked


def test_subscriber_whose_loop_closed_after_its_wakeup_is_dropped():
    bus = ReactiveBus(maxsize=2)
    loop = asyncio.new_event_loop()
    stranded = bus.subscribe("doc-1", ConnectionInfo("t1"))
    parked = loop.create_task(anext(stranded))
    loop.run_until_complete(asyncio.sleep(0))
    bus.emit_sync(event())  # wakes it: no waiter is left to notice the closed loop
    loop.run_until_complete(parked)
    loop.close()
    for _ in range(5):
        bus.emit_sync(event())  # overflowing reveals the closed loop
    assert stranded.close_reason is CloseReason.LOOP_CLOSED
    assert bus.subscriber_count == 0
    assert bus.dropped_count <= 2


def test_presence_drops_subscribers_of_closed_loops():
    bus = ReactiveBus()
    loop = asyncio.new_event_loop()
    stranded = bus.subscribe("doc-1", ConnectionInfo("t1"))
    parked = loop.create_task(anext(stranded))
    loop.run_until_complete(asyncio.sleep(0))
    bus.emit_sync(event())
    loop.run_until_complete(parked)
    loop.close()
    assert bus.presence("doc-1") == ()
    assert bus.subscriber_count == 0


# Bounded tables and cancellation ------------------------------------------------------


def test_forgotten_scopes_are_bounded_and_count_as_changed():
    bus = ReactiveBus(remembered_scopes=100)
    for number in range(20_000):
        bus.emit_sync(ChangeEvent(f"doc-{number}", {"doc"}))
    assert len(bus._revisions) == 100  # not one entry per scope ever emitted to
    # A forgotten scope answers with the highest revision forgotten, never lower
    # than its own: a page that recorded an older position resyncs, none misses.
    assert bus.revision("doc-0") == 19_900 >= 1
    assert bus.subscribe("doc-0").start_revision == 19_900
    assert bus.revision("doc-19999") == 20_000  # remembered exactly
    assert bus.revision("never-seen") == 19_900


def test_remembered_scopes_must_be_a_positive_int():
    with pytest.raises(ValueError, match="remembered_scopes must be at least 1"):
        ReactiveBus(remembered_scopes=0)


async def test_a_subscription_cancelled_before_its_first_iteration_ends_at_once():
    bus = ReactiveBus()
    subscribed = asyncio.Event()

    async def subscriber() -> None:
        subscription = bus.subscribe("doc-1", ConnectionInfo("tab-00000001"))
        subscribed.set()
        await asyncio.Event().wait()  # cancelled here, before iterating
        async for _ in subscription:
            pass

    task = asyncio.create_task(subscriber())
    await subscribed.wait()
    assert len(bus.presence("doc-1")) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The cancelled task (still referenced here) keeps its frame alive: the
    # subscription must not wait for it to be collected.
    assert bus.presence("doc-1") == ()
    assert bus.subscriber_count == 0


async def test_a_subscription_handed_to_another_task_outlives_its_maker():
    bus = ReactiveBus()

    async def maker():
        return bus.subscribe("doc-1")

    subscription = await asyncio.create_task(maker())
    bus.emit_sync(ChangeEvent("doc-1", {"doc"}))
    assert (await subscription.__anext__()).scope == "doc-1"
    subscription.close()


async def test_a_recheck_lost_to_overflow_is_still_asked_for():
    bus = ReactiveBus(maxsize=2)
    hub = bus.subscribe_shared("doc-1")
    assert await hub.ready()
    bus.emit_sync(ChangeEvent("doc-1", {"doc.private"}, recheck=True))
    assert hub.take_recheck() is False  # still queued: its batch carries it
    bus.emit_sync(ChangeEvent("doc-1", {"doc.title"}))
    bus.emit_sync(ChangeEvent("doc-1", {"doc.title"}))  # the first is dropped
    assert hub.take_recheck() is True
    hub.close()


async def test_events_lost_to_a_lag_ask_for_a_recheck():
    bus = ReactiveBus()
    hub = bus.subscribe_shared("doc-1")
    assert await hub.ready()
    bus._fanout.lag(["doc-1"])  # what a Redis reconnect or a gap does
    assert hub.take_recheck() is True
    hub.close()


def test_an_emit_nothing_in_this_process_can_receive_says_so_once(caplog):
    bus = ReactiveBus()
    event = ChangeEvent("doc-1", frozenset({"doc.title"}))
    bus.emit_sync(event)
    bus.emit_sync(event)
    warned = [r for r in caplog.records if "lives in this process only" in r.message]
    assert len(warned) == 1
    caplog.clear()
    served = ReactiveBus()
    served.subscribe("doc-1").close()
    served.emit_sync(event)
    assert not [r for r in caplog.records if "lives in this process only" in r.message]


@pytest.mark.parametrize("turns", range(6))
async def test_cancelling_the_task_iterating_a_subscription_at_any_moment_unsubscribes(
    turns,
):
    """Before the task ever ran, before its first event, between events: presence
    drops within a second, without the garbage collector. (Cancelled before it
    ran, the task's CancelledError holds the coroutine's frame, and with it the
    subscription, until the loop's next turn.)"""
    bus = ReactiveBus()
    gc.disable()
    try:
        subscription = bus.subscribe("doc-1", ConnectionInfo("tab-00000001"))

        async def iterate(events) -> None:
            async for _ in events:
                pass

        task = asyncio.create_task(iterate(subscription))
        del subscription
        for _ in range(turns):
            bus.emit_sync(ChangeEvent("doc-1", {"doc.title"}))
            await asyncio.sleep(0)  # a turn of the loop: the moment to cancel at
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        del task
        await eventually(lambda: bus.presence("doc-1") == (), limit=1.0)
        assert bus.subscriber_count == 0
    finally:
        gc.enable()
