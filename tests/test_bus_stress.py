"""Many emitting threads against subscribers on two event loops that come and go."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from dataclasses import dataclass, field

from reactive_blocks import ChangeEvent, ConnectionInfo, ReactiveBus, Subscription
from tests.waiting import eventually

EMITTERS = 16
EVENTS_PER_EMITTER = 5_000
SCOPES = [f"doc-{n}" for n in range(4)]
SUBSCRIBERS_PER_LOOP = 6
JOIN_TIMEOUT = 120


@dataclass
class Record:
    sub: Subscription
    revisions: list[int] = field(default_factory=list)
    sequences: dict[int, list[int]] = field(default_factory=dict)


def emitter(bus: ReactiveBus, thread_no: int, start: threading.Barrier) -> None:
    scope = SCOPES[thread_no % len(SCOPES)]
    start.wait()
    for seq in range(EVENTS_PER_EMITTER):
        bus.emit_sync(ChangeEvent(scope, frozenset({f"t{thread_no}.s{seq}"})))


async def subscriber(
    bus: ReactiveBus, rng: random.Random, records: list[Record]
) -> None:
    scope = rng.choice(SCOPES)
    sub = bus.subscribe(scope, ConnectionInfo(f"tab-{rng.random()}"))
    record = Record(sub)
    records.append(record)
    quota = rng.randint(20, 400)
    how_to_leave = rng.choice(["break", "close", "cancel"])

    async def read() -> None:
        async for event in sub:
            record.revisions.append(sub.revision)
            (path,) = event.changed_paths
            thread, seq = path.split(".")
            record.sequences.setdefault(int(thread[1:]), []).append(int(seq[1:]))
            if rng.random() < 0.05:
                await asyncio.sleep(0.0005)  # a slow reader, so queues overflow
            if len(record.revisions) >= quota:
                if how_to_leave == "close":
                    sub.close()
                elif how_to_leave == "break":
                    break

    task = asyncio.ensure_future(read())
    if how_to_leave == "cancel":
        with contextlib.suppress(TimeoutError):
            await eventually(
                lambda: len(record.revisions) >= quota or task.done(), JOIN_TIMEOUT
            )
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    sub.close()  # the emitters may have stopped before the quota was reached


def loop_thread(
    bus: ReactiveBus, seed: int, done: threading.Event, records: list[Record]
) -> None:
    async def main() -> None:
        rng = random.Random(seed)
        while not done.is_set():
            batch = [subscriber(bus, rng, records) for _ in range(SUBSCRIBERS_PER_LOOP)]
            await asyncio.wait_for(asyncio.gather(*batch), JOIN_TIMEOUT)

    asyncio.run(main())


def test_many_threads_and_two_loops_keep_exact_accounts():
    bus = ReactiveBus(maxsize=32)
    records: list[Record] = []
    done = threading.Event()
    start = threading.Barrier(EMITTERS)
    loops = [
        threading.Thread(target=loop_thread, args=(bus, seed, done, records))
        for seed in (1, 2)
    ]
    emitters = [
        threading.Thread(target=emitter, args=(bus, n, start)) for n in range(EMITTERS)
    ]
    for thread in loops + emitters:
        thread.start()
    for thread in emitters:
        thread.join(JOIN_TIMEOUT)
    # Wake subscribers still waiting for their quota, then let the loops finish.
    done.set()
    while any(t.is_alive() for t in loops):
        bus.close()
        for thread in loops:
            thread.join(0.05)

    total = EMITTERS * EVENTS_PER_EMITTER
    assert bus.emitted_count == total
    assert bus.sequence == total
    assert max(bus.revision(scope) for scope in SCOPES) == total
    assert bus.subscriber_count == 0
    assert all(bus.presence(scope) == () for scope in SCOPES)
    assert len(records) >= 2 * SUBSCRIBERS_PER_LOOP

    delivered = dropped = 0
    for record in records:
        sub = record.sub
        assert sub.end_revision is not None
        state = sub._state  # the bus's own count of events per scope
        assert state.end_count is not None
        emitted_while_subscribed = state.end_count - state.start_count
        assert (
            sub.delivered_count + sub.dropped_count + sub.discarded_count
            == emitted_while_subscribed
        )
        assert sub.delivered_count == len(record.revisions)
        assert record.revisions == sorted(set(record.revisions)), "out of order"
        for seqs in record.sequences.values():
            assert seqs == sorted(set(seqs)), "an emitter's events out of order"
        delivered += sub.delivered_count
        dropped += sub.dropped_count
    assert bus.dropped_count == dropped
    # The run must really have exercised both paths.
    assert delivered > 1_000
    assert dropped > 1_000
