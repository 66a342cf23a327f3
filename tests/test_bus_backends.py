"""What every bus backend promises, run against the in-process bus and Redis.

For Redis, two ``RedisBus`` objects on one server stand for two processes: what one
emits, the other's subscribers receive.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from reactive_blocks import ChangeEvent, CloseReason, ConnectionInfo, ReactiveBus

TIMEOUT = 5.0


@pytest.fixture(params=["memory", "redis"])
def backend(request):
    return request.param


@pytest.fixture
def make_bus(backend, request):
    """``make_bus(**options)``: a bus of the backend under test (closed afterwards).
    For Redis, every bus made in one test shares the server and the key prefix."""
    made = []
    if backend == "redis":
        from reactive_blocks import RedisBus

        server = request.getfixturevalue("redis_server")
        prefix = request.getfixturevalue("redis_prefix")

        def make(**options):
            made.append(RedisBus(server.url, prefix=prefix, **options))
            return made[-1]

    else:

        def make(**options):
            made.append(ReactiveBus(**options))
            return made[-1]

    yield make
    for bus in made:
        bus.close()


@pytest.fixture
def pair(backend, make_bus):
    """(emitting bus, subscribing bus): two processes on Redis, one bus in memory."""
    first = make_bus()
    return (first, make_bus()) if backend == "redis" else (first, first)


async def subscribed(bus, scope="doc-1", connection=None):
    sub = bus.subscribe(scope, connection)
    assert await asyncio.wait_for(sub.ready(), TIMEOUT)
    return sub


async def batch_of(sub, count=1):
    """The events of the next batches until ``count`` arrived (fail after TIMEOUT)."""
    events, lagged = [], False
    deadline = time.monotonic() + TIMEOUT
    while len(events) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"only {len(events)} of {count} events arrived"
        batch = await sub.next_batch(timeout=remaining)
        assert batch is not None, "the subscription ended"
        events.extend(batch.events)
        lagged = lagged or batch.lagged
    return events, lagged


async def until(predicate, limit=TIMEOUT):
    """Poll ``predicate()`` (which may do I/O) until it holds, within ``limit``."""
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, f"condition not met within {limit}s"
        await asyncio.sleep(0.01)  # polling a condition with a deadline


def event(scope="doc-1", *paths, **kwargs):
    return ChangeEvent(scope, frozenset(paths or {"doc.title"}), **kwargs)


# Delivery -------------------------------------------------------------------------


async def test_events_arrive_in_order_with_increasing_revisions(pair):
    emitter, receiver = pair
    sub = await subscribed(receiver)
    for number in range(200):
        emitter.emit_sync(event("doc-1", f"doc.n{number}"))
    events, lagged = await batch_of(sub, 200)
    assert [next(iter(e.changed_paths)) for e in events] == [
        f"doc.n{n}" for n in range(200)
    ]
    assert not lagged
    assert sub.revision == emitter.revision("doc-1") == receiver.revision("doc-1")


async def test_only_the_scope_subscribed_is_received(pair):
    emitter, receiver = pair
    sub = await subscribed(receiver, "doc-1")
    emitter.emit_sync(event("doc-2", "doc.other"))
    emitter.emit_sync(event("doc-1", "doc.mine", origin="tab-9"))
    (received,), _ = await batch_of(sub)
    assert received == event("doc-1", "doc.mine", origin="tab-9")


async def test_audience_reaches_only_listed_users(pair):
    emitter, receiver = pair
    alice = await subscribed(receiver, "doc-1", ConnectionInfo("tab-a", "1"))
    bob = await subscribed(receiver, "doc-1", ConnectionInfo("tab-b", "2"))
    anonymous = await subscribed(receiver, "doc-1", ConnectionInfo("tab-c"))
    emitter.emit_sync(event("doc-1", "note.for.alice", audience={"1"}))
    emitter.emit_sync(event("doc-1", "doc.everyone"))
    assert [e.changed_paths for e in (await batch_of(alice, 2))[0]] == [
        {"note.for.alice"},
        {"doc.everyone"},
    ]
    assert [e.changed_paths for e in (await batch_of(bob))[0]] == [{"doc.everyone"}]
    assert [e.changed_paths for e in (await batch_of(anonymous))[0]] == [
        {"doc.everyone"}
    ]


async def test_a_subscriber_starts_at_the_scope_revision(pair):
    emitter, receiver = pair
    emitter.emit_sync(event())
    emitter.emit_sync(event())
    await until(lambda: receiver.revision("doc-1") == emitter.revision("doc-1") > 0)
    sub = await subscribed(receiver)
    assert sub.start_revision == emitter.revision("doc-1")
    assert sub.start_epoch == emitter.position().epoch == receiver.position().epoch
    emitter.emit_sync(event())
    await batch_of(sub)
    assert sub.revision > sub.start_revision


async def test_overflow_is_reported_as_lagged(backend, make_bus):
    emitter = make_bus()
    receiver = make_bus(maxsize=2) if backend == "redis" else emitter
    if backend == "memory":
        receiver = emitter = make_bus(maxsize=2)
    sub = await subscribed(receiver)
    for _ in range(5):
        emitter.emit_sync(event())
    await until(lambda: sub.dropped_count == 3)
    batch = await sub.next_batch(timeout=TIMEOUT)
    assert batch is not None
    assert len(batch.events) == 2
    assert batch.lagged
    assert receiver.dropped_count == 3


# Closing --------------------------------------------------------------------------


async def test_close_user_ends_that_users_streams_everywhere(pair):
    emitter, receiver = pair
    alice = await subscribed(receiver, "doc-1", ConnectionInfo("tab-a", "1"))
    alice_elsewhere = await subscribed(receiver, "doc-2", ConnectionInfo("tab-a2", "1"))
    bob = await subscribed(receiver, "doc-1", ConnectionInfo("tab-b", "2"))
    emitter.close_user("1")
    assert await alice.next_batch(timeout=TIMEOUT) is None
    assert await alice_elsewhere.next_batch(timeout=TIMEOUT) is None
    assert alice.close_reason is CloseReason.USER_CLOSED
    assert bob.close_reason is None
    emitter.emit_sync(event())
    assert len((await batch_of(bob))[0]) == 1


async def test_close_scope_ends_its_subscribers_everywhere(pair):
    emitter, receiver = pair
    doomed = await subscribed(receiver, "doc-1")
    other = await subscribed(receiver, "doc-2")
    emitter.close("doc-1")
    assert await doomed.next_batch(timeout=TIMEOUT) is None
    assert doomed.close_reason is CloseReason.SCOPE_CLOSED
    assert other.close_reason is None


# Presence -------------------------------------------------------------------------


async def test_presence_lists_identified_subscribers_of_every_process(pair):
    emitter, receiver = pair
    held = [  # a subscription nobody holds ends
        await subscribed(emitter, "doc-1", ConnectionInfo("tab-1", "7")),
        await subscribed(receiver, "doc-1", ConnectionInfo("tab-2", "8")),
        await subscribed(receiver, "doc-1"),  # unidentified: not listed
    ]
    expected = {("tab-1", "7"), ("tab-2", "8")}
    for bus in (emitter, receiver):
        await until(
            lambda bus=bus: (
                {(c.session_id, c.user_id) for c in bus.presence("doc-1")} == expected
            )
        )
    assert all(sub.close_reason is None for sub in held)


async def test_viewers_count_a_user_once_and_each_anonymous_tab(pair):
    emitter, receiver = pair
    held = [
        await subscribed(receiver, "doc-1", ConnectionInfo(f"alice-{tab}", "1"))
        for tab in range(3)
    ]
    held.append(await subscribed(emitter, "doc-1", ConnectionInfo("bob-0", "2")))
    held.append(await subscribed(emitter, "doc-1", ConnectionInfo("guest-0")))
    held.append(await subscribed(receiver, "doc-1", ConnectionInfo("guest-1")))
    await until(lambda: len(emitter.viewers("doc-1")) == 4)
    viewers = emitter.viewers("doc-1")
    assert sorted(viewers.users) == ["1", "2"]
    assert viewers.anonymous == 2
    assert await emitter.aviewers("doc-1") == viewers  # the same, from async code
    assert len(await receiver.apresence("doc-1")) == 6


async def test_presence_forgets_a_connection_that_left(pair):
    emitter, receiver = pair
    sub = await subscribed(receiver, "doc-1", ConnectionInfo("tab-1", "7"))
    await until(lambda: len(emitter.presence("doc-1")) == 1)
    sub.close()
    await until(lambda: emitter.presence("doc-1") == ())


async def test_a_burst_of_joins_becomes_one_presence_change(make_bus, backend):
    emitter = make_bus(presence_path="presence", presence_grace=0.5)
    watcher_bus = make_bus() if backend == "redis" else emitter
    watcher = await subscribed(watcher_bus, "doc-1")
    tabs = [
        await subscribed(emitter, "doc-1", ConnectionInfo(f"tab-{n}", str(n)))
        for n in range(5)
    ]
    (change,), _ = await batch_of(watcher)
    assert change.changed_paths == {"presence"}
    assert len(emitter.viewers("doc-1")) == 5
    # Nothing more follows the burst.
    quiet = await watcher.next_batch(timeout=0.6)
    assert quiet is not None
    assert quiet.events == ()
    assert tabs


async def test_a_reload_keeps_the_user_listed_then_one_change_follows(
    make_bus, backend
):
    bus = make_bus(presence_path="presence", presence_grace=1.0)
    watcher = await subscribed(make_bus() if backend == "redis" else bus, "doc-1")
    first = await subscribed(bus, "doc-1", ConnectionInfo("tab-old", "1"))
    await batch_of(watcher)  # the join
    first.close()  # the page reloads...
    assert bus.viewers("doc-1").users == ("1",)  # ...and alice is still listed
    second = await subscribed(bus, "doc-1", ConnectionInfo("tab-new", "1"))
    assert bus.viewers("doc-1").users == ("1",)
    events, _ = await batch_of(watcher)
    assert {p for e in events for p in e.changed_paths} == {"presence"}
    await until(lambda: {c.session_id for c in bus.presence("doc-1")} == {"tab-new"})
    assert bus.viewers("doc-1").users == ("1",)
    assert second.close_reason is None


# Options --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"maxsize": 0}, "maxsize must be at least 1"),
        ({"presence_path": "has space"}, "presence_path 'has space' is not a dotted"),
        ({"presence_grace": -1}, "presence_grace must be a non-negative number"),
    ],
)
def test_bad_options_say_what_is_wrong(make_bus, options, error):
    with pytest.raises((TypeError, ValueError), match=error):
        make_bus(**options)


@pytest.mark.parametrize("scope", ["", "has space", "tab\there", "x" * 201, "nl\n"])
def test_scopes_are_validated_before_they_become_keys(make_bus, scope):
    bus = make_bus()
    with pytest.raises(ValueError, match="scope"):
        bus.subscribe(scope)
    with pytest.raises(ValueError, match="scope"):
        ChangeEvent(scope, frozenset({"doc"}))


# Shared subscriptions (stream hubs) -----------------------------------------------


async def shared(bus, scope="doc-1"):
    sub = bus.subscribe_shared(scope)
    assert await asyncio.wait_for(sub.ready(), TIMEOUT)
    return sub


async def test_a_shared_subscription_gets_every_event_once_for_all_its_members(pair):
    emitter, receiver = pair
    hub = await shared(receiver)
    members = [hub.join(ConnectionInfo(f"tab-{n}", str(n))) for n in range(3)]
    emitter.emit_sync(event("doc-1", "note", audience={"1"}))  # its reader filters
    emitter.emit_sync(event("doc-1", "doc.title"))
    events, _ = await batch_of(hub, 2)
    assert [e.audience for e in events] == [{"1"}, None]
    assert hub.members == 3
    assert receiver.subscriber_count == 3  # connections, not subscriptions
    assert {c.session_id for c in receiver.presence("doc-1")} >= {"tab-0", "tab-2"}
    hub.leave(members[0])
    await until(
        lambda: "tab-0" not in {c.session_id for c in emitter.presence("doc-1")}
    )
    assert hub.members == 2


async def test_close_user_ends_one_member_and_tells_the_reader(pair):
    emitter, receiver = pair
    hub = await shared(receiver)
    alice = hub.join(ConnectionInfo("tab-a", "5"))
    bob = hub.join(ConnectionInfo("tab-b", "6"))
    emitter.close_user("5")
    batch = await hub.next_batch(timeout=TIMEOUT)  # woken for it, even without events
    assert batch is not None
    await until(lambda: alice.close_reason is CloseReason.USER_CLOSED)
    assert hub.take_closed() + hub.take_closed() == [alice]
    assert bob.close_reason is None
    assert hub.close_reason is None


async def test_close_session_ends_the_members_that_session_opened(pair):
    emitter, receiver = pair
    hub = await shared(receiver)
    leaving = hub.join(ConnectionInfo("tab-a", "5", session="s-alice"))
    other_tab = hub.join(ConnectionInfo("tab-a2", "5", session="s-alice-phone"))
    emitter.close_session("s-alice")
    assert await hub.next_batch(timeout=TIMEOUT) is not None
    await until(lambda: leaving.close_reason is CloseReason.USER_CLOSED)
    assert hub.take_closed() + hub.take_closed() == [leaving]
    assert other_tab.close_reason is None


def test_close_session_validates(pair):
    emitter, _ = pair
    with pytest.raises(TypeError, match="session must be a non-empty str"):
        emitter.close_session("")


async def test_recheck_wakes_the_shared_subscribers_of_that_scope(pair):
    emitter, receiver = pair
    hub = await shared(receiver)
    other = await shared(receiver, "doc-2")
    emitter.recheck("doc-1")
    assert await hub.next_batch(timeout=TIMEOUT) is not None
    await until(hub.take_recheck)
    assert hub.take_recheck() is False  # once per request
    assert other.take_recheck() is False


async def test_closing_the_scope_ends_a_shared_subscription_and_its_members(pair):
    emitter, receiver = pair
    hub = await shared(receiver)
    member = hub.join(ConnectionInfo("tab-1", "1"))
    emitter.close("doc-1")
    batch = await hub.next_batch(timeout=TIMEOUT)
    while batch is not None and not batch.events:  # (a wake-up at its start)
        batch = await hub.next_batch(timeout=TIMEOUT)
    assert batch is None
    assert hub.close_reason is member.close_reason is CloseReason.SCOPE_CLOSED
    assert receiver.subscriber_count == 0
