"""The Redis bus against a real redis-server: transport, recovery, presence, limits.

Two ``RedisBus`` objects on one server stand for two processes; a few tests run a
real second process. Servers that a test stops and restarts are its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import sys
import threading
import time

import pytest
import redis

from reactive_blocks import ChangeEvent, CloseReason, ConnectionInfo, Position, RedisBus
from reactive_blocks.metrics import reset_metrics
from tests.live_server import ROOT
from tests.processes import require
from tests.redis_server import RedisServer
from tests.test_bus_backends import batch_of, event, subscribed, until

TIMEOUT = 5.0


@pytest.fixture
def buses(redis_server, redis_prefix):
    """``buses(**options)``: a RedisBus on the session's server, closed afterwards."""
    made = []

    def make(url=None, **options):
        options.setdefault("prefix", redis_prefix)
        made.append(RedisBus(url or redis_server.url, **options))
        return made[-1]

    yield make
    for bus in made:
        bus.close()


@pytest.fixture
def own_server(tmp_path):
    """A redis-server this test may stop and start again."""
    server = RedisServer(tmp_path / "own")
    yield server
    server.stop()


def inspect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


def publishes(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_publish", {}).get("calls", 0))


# Transport ------------------------------------------------------------------------


async def test_a_process_that_only_emits_opens_no_subscription(redis_server, buses):
    emitter = buses()
    for _ in range(10):
        emitter.emit_sync(event())
    await until(lambda: emitter.published_count == 10)
    assert emitter.connect_count == 0
    client = inspect(redis_server.url)
    prefix = emitter._link.keys.prefix
    assert client.pubsub_channels(f"{prefix}:*") == []


async def test_one_subscription_per_process_and_one_publish_per_change(
    redis_server, buses
):
    first, second = buses(), buses()
    client = inspect(redis_server.url)
    prefix = first._link.keys.prefix
    subs = [
        await subscribed(bus, f"doc-{n % 3}", ConnectionInfo(f"tab-{n}"))
        for n in range(60)
        for bus in (first, second)
    ]
    channels = set(client.pubsub_channels(f"{prefix}:*"))
    assert channels == {f"{prefix}:control"} | {
        f"{prefix}:scope:doc-{n}" for n in range(3)
    }
    assert client.pubsub_numsub(f"{prefix}:scope:doc-0") == [
        (f"{prefix}:scope:doc-0", 2)
    ]
    assert first.connect_count == second.connect_count == 1

    before = publishes(client)
    for _ in range(10):
        first.emit_sync(event("doc-0"))
    for sub in [s for s in subs if s.scope == "doc-0"][:4]:
        await batch_of(sub, 10)
    assert publishes(client) - before == 10  # 10 changes, 40 connections: 10 PUBLISH

    for sub in subs:
        sub.close()
    await until(lambda: client.pubsub_channels(f"{prefix}:scope:*") == [])


async def test_revisions_are_agreed_by_every_process(buses):
    first, second, third = buses(), buses(), buses()
    subs = [await subscribed(bus) for bus in (first, second, third)]
    for number in range(30):
        (first, second)[number % 2].emit_sync(event("doc-1", f"doc.n{number}"))
    seen = []
    for sub in subs:
        events, _ = await batch_of(sub, 30)
        seen.append([sorted(e.changed_paths) for e in events])
    assert seen[0] == seen[1] == seen[2]
    assert subs[0].revision == subs[1].revision == subs[2].revision
    assert first.revision("doc-1") == subs[0].revision


async def test_prefixes_keep_two_sites_apart(redis_server, buses):
    site_a, site_b = buses(prefix="site-a"), buses(prefix="site-b")
    sub_b = await subscribed(site_b)
    site_a.emit_sync(event())
    quiet = await sub_b.next_batch(timeout=0.3)
    assert quiet is not None
    assert quiet.events == ()
    site_b.emit_sync(event())
    assert len((await batch_of(sub_b))[0]) == 1


async def test_an_event_emitted_by_a_process_that_exits_at_once_is_delivered(
    redis_server, buses
):
    receiver = buses()
    sub = await subscribed(receiver, "doc-7")
    script = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='tests.settings';"
        "django.setup();"
        "from reactive_blocks import RedisBus, ChangeEvent;"
        f"bus = RedisBus({redis_server.url!r}, prefix={receiver._link.keys.prefix!r});"
        "bus.emit_sync(ChangeEvent('doc-7', {'doc.from_a_script'}))"
        # no close(): the process exits, and the outbox is flushed on the way out
    )
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", script],
        cwd=ROOT,
        check=True,
        timeout=60,
        env=_env(),
    )
    (received,), _ = await batch_of(sub)
    assert received.changed_paths == {"doc.from_a_script"}


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT)}


# What is not ours -----------------------------------------------------------------


FOREIGN = [
    ("not JSON", b"\x80 hello"),
    ("not an object", b"[1, 2]"),
    ("unknown version", b'{"v": 2, "kind": "event"}'),
    ("bad envelope", b'{"v": 1, "kind": "event", "epoch": "e", "rev": "x", "prev": 0}'),
    (
        "bad event",
        b'{"v":1,"kind":"event","epoch":"e","rev":9,"prev":0,"event":{"scope":"doc-2"}}',
    ),
    ("too large", b'"' + b"x" * (1 << 20) + b'"'),
]


async def test_malformed_and_foreign_messages_are_ignored_and_logged_once_per_kind(
    redis_server, buses, caplog
):
    metrics = reset_metrics()
    bus = buses()
    sub = await subscribed(bus, "doc-1")
    client = inspect(redis_server.url)
    channel = bus._link.keys.channel("doc-1")
    with caplog.at_level(logging.WARNING, logger="reactive_blocks.bus.listener"):
        for _ in range(2):
            for _, payload in FOREIGN:
                client.publish(channel, payload)
            client.publish(
                bus._link.keys.control, b'1-0 {"v": 1, "kind": "format_disk"}'
            )
        bus.emit_sync(event("doc-1", "doc.real"))
        (received,), lagged = await batch_of(sub)
    assert received.changed_paths == {"doc.real"}
    assert lagged  # for the newer version's message only: see below
    assert bus.malformed_count == 2 * (len(FOREIGN) + 1)
    # Counted by reason, for the metrics: a stray publisher is visible.
    assert bus.refused_counts == {
        kind: 2 for kind, _ in [*FOREIGN, ("unknown control", b"")]
    }
    for kind, _ in [*FOREIGN, ("unknown control", b"")]:
        assert caplog.text.count(f"({kind}:") == 1, kind
        refused = metrics.registry.get_sample_value(
            "reactive_blocks_bus_messages_refused_total",
            {"reason": kind.replace(" ", "_")},
        )
        assert refused == 2, kind
    # The real event's trip through Redis was timed.
    assert metrics.registry.get_sample_value("reactive_blocks_bus_lag_seconds_count")


async def test_a_gap_in_revisions_makes_subscribers_resync(redis_server, buses):
    bus = buses()
    sub = await subscribed(bus)
    epoch = bus.position().epoch
    skipped = {
        "v": 1,
        "kind": "event",
        "epoch": epoch,
        "rev": 1000,
        "prev": 999,  # an event this process never saw
        "event": {
            "scope": "doc-1",
            "paths": ["doc.x"],
            "origin": None,
            "audience": None,
        },
    }
    inspect(redis_server.url).publish(
        bus._link.keys.channel("doc-1"), json.dumps(skipped)
    )
    events, lagged = await batch_of(sub)
    assert lagged
    assert events[0].changed_paths == {"doc.x"}


# Redis going away -------------------------------------------------------------------


async def test_redis_restarting_mid_stream_resyncs_then_delivers(own_server, buses):
    own_server.start()
    emitter, receiver = buses(own_server.url), buses(own_server.url)
    sub = await subscribed(receiver)
    emitter.emit_sync(event())
    await batch_of(sub)
    old_epoch = sub.start_epoch

    own_server.stop()
    emitter.emit_sync(event("doc-1", "doc.while_down"))  # waits in the outbox
    own_server.start()

    # The subscriber learns that it may have missed something: it resyncs (its
    # page is rendered from the data, which has the change made while down).
    batch = await sub.next_batch(timeout=15)
    while batch is not None and not batch.lagged:
        batch = await sub.next_batch(timeout=15)
    assert batch is not None
    assert batch.lagged
    await until(lambda: emitter.queued_count == 0, limit=15)
    # Redis lost its data: a new epoch, and the subscription reconnected.
    assert receiver.position().epoch != old_epoch
    assert receiver.connect_count >= 2
    emitter.emit_sync(event("doc-1", "doc.after"))
    await received(sub, "doc.after")


async def received(sub, path):
    """Read batches until one holds ``path`` (earlier events may come first)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        batch = await sub.next_batch(timeout=max(0.0, deadline - time.monotonic()))
        assert batch is not None
        assert batch.events or time.monotonic() < deadline, f"{path} never came"
        if any(path in e.changed_paths for e in batch.events):
            return


async def test_a_process_started_while_redis_is_down_works_once_it_comes(
    own_server, buses
):
    bus = buses(own_server.url)  # nothing listens on that port yet
    sub = bus.subscribe("doc-1", ConnectionInfo("tab-1", "1"))
    assert bus.position().sequence == 0  # a fallback answer, not an error
    assert bus.presence("doc-1") == (sub.connection,)  # this process's, at least
    bus.emit_sync(event("doc-1", "doc.early"))
    assert not sub._state.started
    own_server.start()
    assert await asyncio.wait_for(sub.ready(), 15)
    # The early change is published once Redis answers: either before the
    # subscription starts (then its start revision covers it) or after.
    await until(lambda: bus.published_count == 1, limit=15)
    if sub.start_revision == 0:
        await received(sub, "doc.early")
    bus.emit_sync(event("doc-1", "doc.after"))
    await received(sub, "doc.after")


async def test_a_full_outbox_drops_the_oldest_then_pages_everywhere_resync(
    own_server, buses
):
    own_server.start()
    emitter, receiver = buses(own_server.url, outbox_size=50), buses(own_server.url)
    here = await subscribed(emitter, "doc-1")
    there = await subscribed(receiver, "doc-1")
    own_server.stop()
    for number in range(200):
        emitter.emit_sync(event("doc-1", f"doc.n{number}"))
    # A batch may have been on its way when Redis went (counted as queued, and
    # as many as the drain took at once): once it failed, only the newest 50 stay.
    assert emitter.outbox_dropped_count + emitter.queued_count == 200
    await until(lambda: emitter.outbox_dropped_count == 150, limit=15)
    assert emitter.queued_count == 50
    own_server.start()
    # The 50 newest changes, then a resync notice for the scope that lost some.
    await until(lambda: emitter.published_count >= 51, limit=15)
    assert emitter.outbox_dropped_count == 150
    for sub in (here, there):
        batch = await sub.next_batch(timeout=15)
        while batch is not None and not batch.lagged:
            batch = await sub.next_batch(timeout=15)
        assert batch is not None
        assert batch.lagged


async def test_a_resync_notice_makes_every_subscriber_of_the_scope_resync(
    redis_server, buses
):
    bus = buses()
    sub = await subscribed(bus, "doc-1")
    other = await subscribed(bus, "doc-2")
    notice = {"v": 1, "kind": "resync", "epoch": bus.position().epoch, "rev": 500,
              "prev": 0, "event": None}  # fmt: skip
    inspect(redis_server.url).publish(
        bus._link.keys.channel("doc-1"), json.dumps(notice)
    )
    batch = await sub.next_batch(timeout=TIMEOUT)
    assert batch is not None
    assert batch.lagged
    assert batch.events == ()
    assert not other.lagged


def test_emitting_from_8_threads_into_a_stopped_redis_never_blocks(own_server, buses):
    bus = buses(own_server.url, outbox_size=1000)  # no server on that port
    threads, per_thread = 8, 5000
    start = threading.Barrier(threads)

    def emit() -> None:
        start.wait()
        for number in range(per_thread):
            bus.emit_sync(event(f"doc-{number % 7}"))

    workers = [threading.Thread(target=emit) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not any(worker.is_alive() for worker in workers)
    total = threads * per_thread
    assert bus.emitted_count == total
    assert bus.queued_count + bus.outbox_dropped_count == total
    assert bus.queued_count == 1000
    # No emit waited for Redis: the outbox alone tried, with backoff, a handful of
    # times for 40,000 calls.
    assert bus.publish_attempts < 200
    assert bus.published_count == 0


async def test_losing_data_starts_a_new_epoch_and_pages_resync(redis_server, buses):
    bus = buses()
    sub = await subscribed(bus)
    bus.emit_sync(event())
    await batch_of(sub)
    epoch = sub.start_epoch
    client = inspect(redis_server.url)
    prefix = bus._link.keys.prefix
    client.delete(f"{prefix}:seq", f"{prefix}:epoch")  # what a restart would lose
    bus.emit_sync(event("doc-1", "doc.new_history"))
    # The change opens a new history; the page resyncs (the event itself may
    # arrive before this process has learnt the new epoch, and is then covered by
    # the resync rather than delivered).
    batch = await sub.next_batch(timeout=TIMEOUT)
    assert batch is not None
    assert batch.lagged
    assert bus.position().epoch not in ("", epoch)
    assert sub.start_epoch == bus.position().epoch


async def test_a_restart_from_an_older_snapshot_starts_a_new_epoch(own_server, buses):
    """Redis restarted from a snapshot taken before the latest events: its sequence
    went back. The server's run id changed, so a new epoch starts, and numbers
    already handed out are never handed out again in one epoch."""
    own_server.start()
    bus = buses(own_server.url)
    sub = await subscribed(bus)
    for _ in range(5):
        bus.emit_sync(event())
    await batch_of(sub, 5)
    inspect(own_server.url).save()  # a snapshot at sequence 5
    for _ in range(3):
        bus.emit_sync(event())
    await batch_of(sub, 3)
    before = bus.position()
    assert before.sequence == 8
    own_server.stop()  # without saving again: events 6-8 are lost
    own_server.start()  # loads the snapshot: sequence 5, the same epoch key
    assert int(inspect(own_server.url).get(f"{bus._link.keys.prefix}:seq")) == 5
    batch = await sub.next_batch(timeout=15)
    while batch is not None and not batch.lagged:
        batch = await sub.next_batch(timeout=15)
    assert batch is not None
    assert batch.lagged
    after = bus.position()
    assert after.epoch != before.epoch


# Presence ---------------------------------------------------------------------------


async def test_a_dead_process_stops_counting_within_twice_the_refresh(buses):
    observer = buses(presence_refresh=0.3)
    doomed = buses(presence_refresh=0.3)
    held = await subscribed(doomed, "doc-1", ConnectionInfo("tab-dead", "9"))
    await until(lambda: len(observer.presence("doc-1")) == 1)
    # The process "dies": it stops refreshing its entries, and never leaves.
    # (A real SIGKILL of a server process is in test_cluster.py.)
    link = doomed._link
    link._loop.call_soon_threadsafe(link._tasks[1].cancel)  # _keep_presence
    await until(lambda: link._tasks[1].done())
    died = time.monotonic()
    await until(lambda: observer.presence("doc-1") == (), limit=5)
    assert time.monotonic() - died <= 2 * 0.3 + 0.5  # twice the refresh, plus polling
    assert held.close_reason is None  # nobody told it: it just stopped counting
    link.roster.forget()  # it is dead: nothing to leave at close


async def test_close_user_reaches_every_process(buses):
    first, second = buses(), buses()
    a1 = await subscribed(first, "doc-1", ConnectionInfo("tab-1", "5"))
    a2 = await subscribed(second, "doc-2", ConnectionInfo("tab-2", "5"))
    assert first.close_user("5") == 1  # here; the other process closes its own
    assert await a2.next_batch(timeout=TIMEOUT) is None
    assert a1.close_reason is a2.close_reason


# Configuration ------------------------------------------------------------------------


def test_unknown_redis_options_fail_at_construction(redis_server):
    with pytest.raises(ValueError, match="Redis options not accepted by redis-py"):
        RedisBus(redis_server.url, no_such_option=1)


def test_sentinels_need_a_master_name():
    with pytest.raises(ValueError, match="sentinels and master_name go together"):
        RedisBus(sentinels=[("127.0.0.1", 26379)])


@pytest.fixture
def tls_server(tmp_path):
    """A redis-server that speaks only TLS and wants a password: (URL, CA file)."""
    openssl = require("openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    tls_port = RedisServer(tmp_path).port
    server = RedisServer(
        tmp_path / "tls",
        "--tls-port", str(tls_port), "--tls-cert-file", str(cert),
        "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert),
        "--tls-auth-clients", "no", "--requirepass", "s3cret",
    )  # fmt: skip
    # The plain port stays open for the start-up check, which must log in.
    server.answers = lambda: _answers_with_password(server.port)  # type: ignore[method-assign]
    with server:
        yield f"rediss://:s3cret@127.0.0.1:{tls_port}/0", str(cert)


def _answers_with_password(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, password="s3cret").ping())
    except redis.RedisError:
        return False


async def test_tls_with_a_password(tls_server, buses):
    url, ca_file = tls_server
    bus = buses(url, ssl_ca_certs=ca_file)
    sub = await subscribed(bus)
    bus.emit_sync(event())
    assert len((await batch_of(sub))[0]) == 1
    refused = buses(url.replace("s3cret", "wrong"), ssl_ca_certs=ca_file)
    assert refused.position() == Position("", 0)  # the fallback: it was refused


@pytest.fixture
def sentinel(tmp_path):
    """A master and a Sentinel watching it under the name "main": the Sentinel."""
    with RedisServer(tmp_path / "master") as master:
        sentinel = RedisServer(tmp_path / "sentinel")
        conf = tmp_path / "sentinel.conf"
        conf.write_text(
            f"port {sentinel.port}\nbind 127.0.0.1\n"
            f"sentinel monitor main 127.0.0.1 {master.port} 1\n"
        )
        sentinel.extra = ("--sentinel",)
        sentinel.start = lambda: _start_sentinel(sentinel, conf)  # type: ignore[method-assign]
        with sentinel:
            yield sentinel


def _start_sentinel(sentinel: RedisServer, conf) -> RedisServer:
    sentinel.process = subprocess.Popen(
        [sentinel.binary, str(conf), "--sentinel"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not sentinel.answers():
        assert time.monotonic() < deadline, "the sentinel did not start"
        time.sleep(0.02)  # polling a condition with a deadline
    return sentinel


async def test_sentinel(sentinel, buses):
    bus = buses(sentinels=[("127.0.0.1", sentinel.port)], master_name="main")
    sub = await subscribed(bus)
    bus.emit_sync(event())
    assert len((await batch_of(sub))[0]) == 1


@pytest.fixture
def failover(tmp_path):
    """A master, its replica, and a Sentinel that promotes the replica once the
    master has not answered for half a second: (master, replica, sentinel)."""
    with (
        # The replica's first sync at once, not after the usual five seconds.
        RedisServer(tmp_path / "master", "--repl-diskless-sync-delay", "0") as master,
        RedisServer(
            tmp_path / "replica", "--replicaof", "127.0.0.1", str(master.port)
        ) as replica,
    ):
        deadline = time.monotonic() + 10
        while _replication(replica).get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica did not sync"
            time.sleep(0.02)  # polling a condition with a deadline
        sentinel = RedisServer(tmp_path / "sentinel")
        conf = tmp_path / "failover-sentinel.conf"
        conf.write_text(
            f"port {sentinel.port}\nbind 127.0.0.1\n"
            f"sentinel monitor main 127.0.0.1 {master.port} 1\n"
            "sentinel down-after-milliseconds main 500\n"
            "sentinel failover-timeout main 3000\n"
        )
        _start_sentinel(sentinel, conf)
        try:
            yield master, replica, sentinel
        finally:
            sentinel.stop()


def _replication(server: RedisServer) -> dict[str, object]:
    with contextlib.suppress(redis.RedisError), redis.Redis(port=server.port) as client:
        return dict(client.info("replication"))
    return {}


async def test_a_sentinel_failover_moves_the_bus_to_the_new_master(failover, buses):
    """The master dies; the Sentinel promotes its replica. The bus finds the new
    master by itself, in a new epoch (the replica may have missed the last
    numbers): subscribers resync, and changes flow again."""
    master, replica, sentinel = failover
    bus = buses(sentinels=[("127.0.0.1", sentinel.port)], master_name="main")
    sub = await subscribed(bus)
    bus.emit_sync(event())
    assert len((await batch_of(sub))[0]) == 1
    epoch = bus.position().epoch
    master.stop()
    lagged, arrived = False, []
    deadline = time.monotonic() + 30
    while not (lagged and arrived):
        assert time.monotonic() < deadline, f"lagged={lagged}, arrived={arrived}"
        bus.emit_sync(event("doc-1", "doc.after_failover"))
        batch = await sub.next_batch(timeout=0.5)
        assert batch is not None, "the subscription ended"
        lagged = lagged or batch.lagged
        arrived += [e for e in batch.events if "doc.after_failover" in e.changed_paths]
    assert _replication(replica)["role"] == "master"
    assert bus.position().epoch != epoch


def test_change_event_json_round_trip():
    from reactive_blocks.bus.wire import event_payload

    original = ChangeEvent(
        "doc-1", frozenset({"b", "a"}), origin="tab-1", audience=frozenset({"2", "1"})
    )
    assert json.loads(event_payload(original)) == {
        "scope": "doc-1",
        "paths": ["a", "b"],
        "origin": "tab-1",
        "audience": ["1", "2"],
    }


def test_a_recheck_travels_with_its_event_and_garbage_in_it_is_refused():
    from reactive_blocks.bus.wire import Malformed, event_payload, parse_published

    def envelope(body: str) -> str:
        return f'{{"v":1,"kind":"event","epoch":"e","rev":2,"prev":1,"event":{body}}}'

    event = ChangeEvent("doc-1", {"doc.private"}, recheck=True)
    assert parse_published(envelope(event_payload(event)), "doc-1").event == event
    plain = parse_published(
        envelope(event_payload(ChangeEvent("doc-1", {"a"}))), "doc-1"
    )
    assert plain.event is not None
    assert plain.event.recheck is False
    bad = '{"scope":"doc-1","paths":["a"],"origin":null,"audience":null,"recheck":1}'
    with pytest.raises(Malformed, match="recheck must be a bool"):
        parse_published(envelope(bad), "doc-1")


async def test_a_recheck_reaches_a_hub_in_another_process_with_its_event(buses):
    emitter, receiver = buses(), buses()
    hub = receiver.subscribe_shared("doc-1")
    assert await hub.ready()
    emitter.emit_sync(ChangeEvent("doc-1", {"doc.title"}, recheck=True))
    events, _ = await batch_of(hub)
    assert [e.recheck for e in events] == [True]
    hub.close()


async def test_only_a_message_of_a_newer_version_makes_its_scope_resync(
    redis_server, buses
):
    """Garbage is ignored; a message a newer release may have sent (mid-deploy)
    could be a real change, so its scope's pages resync rather than miss it."""
    bus = buses()
    sub = await subscribed(bus, "doc-1")
    client = inspect(redis_server.url)
    channel = bus._link.keys.channel("doc-1")
    for kind, payload in FOREIGN:
        if kind != "unknown version":
            client.publish(channel, payload)
    bus.emit_sync(event("doc-1", "doc.real"))
    (_, lagged) = await batch_of(sub)
    assert not lagged
    client.publish(channel, b'{"v": 2, "kind": "event"}')
    batch = await sub.next_batch(timeout=TIMEOUT)
    assert batch is not None
    assert batch.lagged


async def test_a_stale_start_cannot_start_a_later_subscription(buses):
    """The scope is left and subscribed again while its first start still waits for
    Redis: that start's answer is stale and must not start the new subscriber."""
    bus, emitter = buses(), buses()
    link = bus._link
    real_position = link.position
    held: list[asyncio.Event] = []
    asked = threading.Event()

    async def slow_first_position(scope=None):
        answer = await real_position(scope)
        if scope == "doc-1" and not held:
            held.append(asyncio.Event())
            asked.set()
            await held[0].wait()  # the answer is now out of date
        return answer

    link.position = slow_first_position
    first = bus.subscribe("doc-1")
    await asyncio.to_thread(asked.wait, TIMEOUT)
    first.close()  # the last subscriber leaves: the channel is unsubscribed
    await until(lambda: bus._link.listener._subscribed == set())
    emitter.emit_sync(event("doc-1", "doc.while_nobody_listened"))
    await until(lambda: emitter.published_count == 1)
    second = bus.subscribe("doc-1")
    link.post(held[0].set)  # the stale answer arrives now
    assert await asyncio.wait_for(second.ready(), TIMEOUT)
    assert second.start_revision == emitter.revision("doc-1")  # not the stale one


async def test_closing_a_users_streams_is_never_dropped_for_events(own_server, buses):
    own_server.start()
    emitter, receiver = buses(own_server.url, outbox_size=10), buses(own_server.url)
    alice = await subscribed(receiver, "doc-1", ConnectionInfo("tab-a", "5"))
    own_server.stop()
    emitter.close_user("5")  # access revoked while Redis is away...
    for number in range(100):  # ...then more changes than the outbox holds
        emitter.emit_sync(event("doc-1", f"doc.n{number}"))
    assert emitter.outbox_dropped_count == 90
    own_server.start()
    await until(lambda: alice.close_reason is CloseReason.USER_CLOSED, limit=15)


async def test_an_event_too_large_to_publish_becomes_a_resync(buses):
    emitter, receiver = buses(), buses()
    sub = await subscribed(receiver)
    huge = ChangeEvent("doc-1", frozenset({f"doc.f{n:06}" for n in range(60_000)}))
    emitter.emit_sync(huge)
    batch = await sub.next_batch(timeout=TIMEOUT)
    assert batch is not None
    assert batch.lagged
    assert batch.events == ()


async def test_a_close_sent_from_here_does_not_close_what_opened_after(buses):
    here, there = buses(), buses()
    elsewhere = await subscribed(there, "doc-1", ConnectionInfo("tab-1", "5"))
    assert here.close_user("5") == 0
    again = await subscribed(here, "doc-1", ConnectionInfo("tab-2", "5"))  # re-login
    await until(lambda: elsewhere.close_reason is CloseReason.USER_CLOSED)
    probe = await subscribed(there, "doc-9")  # the close has reached every process
    here.emit_sync(event("doc-9"))
    await batch_of(probe)
    assert again.close_reason is None


def test_nothing_restarts_the_link_once_it_stopped(buses):
    bus = buses()
    sub = bus.subscribe("doc-1", ConnectionInfo("tab-1", "1"))
    running = [t for t in threading.enumerate() if t.name == "reactive-blocks-redis"]
    bus.close()  # stops the link: hooks that fire now must not start it again
    del sub
    import gc

    gc.collect()
    after = [t for t in threading.enumerate() if t.name == "reactive-blocks-redis"]
    assert len(after) <= len(running) - 1
    assert bus._link._loop is None
