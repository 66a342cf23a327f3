"""One subscriber of the bus: its queue, its state, and the async iterator users hold.

The local fan-out owns the state (``SubscriberState``) and guards it with its lock;
the user holds a ``Subscription``, and dropping it unsubscribes.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reactive_blocks.bus.state import CloseReason, Member, SubscriberState

if TYPE_CHECKING:
    from collections.abc import Callable

    from reactive_blocks.bus.fanout import Fanout
    from reactive_blocks.events import ChangeEvent, ConnectionInfo

__all__ = [
    "Batch",
    "CloseReason",
    "Member",
    "Position",
    "SharedSubscription",
    "SubscriberState",
    "Subscription",
    "when_cancelled",
]


def when_cancelled(callback: Callable[[], object]) -> Callable[[], None]:
    """Run ``callback`` if the current task is cancelled (from outside any task,
    never); returns what forgets it. Something subscribed in a task that is
    cancelled before it starts iterating must not wait for the garbage collector.
    The callback must not reference the subscriber, or it would keep it alive."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    if task is None:
        return _nothing

    def done(finished: asyncio.Task[object]) -> None:
        if finished.cancelled():
            callback()

    def forget() -> None:
        task.remove_done_callback(done)

    task.add_done_callback(done)
    return forget


def _nothing() -> None:
    pass


@dataclass(frozen=True, slots=True)
class Position:
    """Where a bus stands: its epoch and the number of its latest event.

    A page records the position it was rendered at; a stream compares it with
    the scope's revision when it starts. Positions of different epochs say
    nothing about each other (a restarted process, or Redis that lost its data).
    """

    epoch: str
    sequence: int


@dataclass(frozen=True, slots=True)
class Batch:
    """Everything that queued up for a subscriber since it last looked."""

    events: tuple[ChangeEvent, ...]
    revision: int  # scope revision of the last event in ``events``
    lagged: bool  # events were lost before these: the reader must resync
    # When the oldest of ``events`` was published (time.time()), if known.
    since: float | None = None


class Subscription:
    """One subscriber's view of its scope: an async iterator of ``ChangeEvent``s.

    Meant for one consumer task. Cancellation while waiting, ``close()`` and
    ``async with`` unsubscribe at once; so does leaving ``async for`` once nothing
    else references the subscription (the usual inline ``async for ... in
    bus.subscribe(...)``), and cancelling the task that subscribed before anything
    waited on the subscription.
    """

    def __init__(self, fanout: Fanout, state: SubscriberState) -> None:
        self._fanout = fanout
        self._state = state
        # The fan-out holds only the state, never this object, so dropping the
        # last reference (e.g. breaking out of ``async for``) unsubscribes.
        self._finalizer = weakref.finalize(self, fanout.remove, state, CloseReason.LEFT)
        # Until something waits on it (and cancellation there unsubscribes), the
        # subscribing task's cancellation does.
        self._forget_owner = (
            _nothing if state.members is not None else when_cancelled(self._finalizer)
        )

    def __repr__(self) -> str:
        return f"<Subscription scope={self.scope!r} revision={self.revision}>"

    @property
    def scope(self) -> str:
        return self._state.scope

    @property
    def connection(self) -> ConnectionInfo | None:
        return self._state.connection

    @property
    def started(self) -> bool:
        """Whether the bus knows where this subscription starts (see ``ready()``)."""
        return self._state.started

    @property
    def start_revision(self) -> int:
        """The scope's revision when this subscription began (see ``ready()``)."""
        return self._state.start_revision

    @property
    def start_epoch(self) -> str:
        """The bus's epoch when this subscription began (see ``ready()``)."""
        return self._state.start_epoch

    @property
    def start_sequence(self) -> int | None:
        """The bus's sequence when this subscription began, if the bus knows it."""
        return self._state.start_sequence

    @property
    def revision(self) -> int:
        """Scope revision of the last event received (``start_revision`` before any)."""
        return self._state.revision

    @property
    def end_revision(self) -> int | None:
        """The scope's revision when this subscription ended (None while active)."""
        return self._state.end_revision

    @property
    def lagged(self) -> bool:
        """True once an event was lost for this subscriber and not yet acknowledged."""
        return self._state.lagged

    @property
    def delivered_count(self) -> int:
        return self._state.delivered

    @property
    def dropped_count(self) -> int:
        return self._state.dropped

    @property
    def discarded_count(self) -> int:
        """Events still queued when the subscription ended, never delivered."""
        return self._state.discarded

    @property
    def close_reason(self) -> CloseReason | None:
        return self._state.close_reason

    def take_lagged(self) -> bool:
        """Return whether events were lost since the last call, and reset the flag."""
        with self._fanout.lock:
            lagged, self._state.lagged = self._state.lagged, False
        return lagged

    async def ready(self) -> bool:
        """Wait until the bus knows where this subscription starts; False if it ended.

        Immediate on the in-process bus. On Redis the first subscriber of a scope
        in a process waits for its channel to be live (and for Redis to be
        reachable at all), so that no event can fall between the start revision
        and the first event delivered.
        """
        return bool(await self._wait(lambda state: state.started))

    def close(self) -> None:
        """Unsubscribe. Harmless to repeat."""
        self._finalizer()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> ChangeEvent:
        if not await self._wait(_has_events):
            raise StopAsyncIteration
        state = self._state
        with self._fanout.lock:
            if state.close_reason is not None:
                raise StopAsyncIteration
            revision, event = state.queue.popleft()
            state.delivered += 1
            state.revision = revision
        return event

    async def next_batch(self, timeout: float | None = None) -> Batch | None:  # noqa: ASYNC109 - a quiet interval must not cancel
        """Wait for events (or for a loss to report), then take every queued one at
        once; None when closed.

        Streams use this to merge a burst into one render. With ``timeout``, an
        empty batch comes back when nothing arrived in time (for heartbeats); use
        it rather than ``asyncio.wait_for()``, whose cancellation ends the
        subscription. A batch may be empty and lagged: events were lost (Redis
        went away) and the reader must resync.
        """
        ready = await self._wait(_has_news, timeout)
        state = self._state
        if ready is None:
            return Batch((), state.revision, False)
        if not ready:
            return None
        with self._fanout.lock:
            if state.close_reason is not None:
                return None
            items: tuple[tuple[int, ChangeEvent], ...] = ()
            if state.started:  # before that, what queues up may be part of its start
                items = tuple(state.queue)
                state.queue.clear()
            state.nudged = False
            state.delivered += len(items)
            since = None
            if items:
                state.revision = items[-1][0]
                since, state.since = state.since, None
            lagged, state.lagged = state.lagged, False
        return Batch(tuple(e for _, e in items), state.revision, lagged, since)

    async def _wait(
        self,
        condition: Callable[[SubscriberState], bool],
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> bool | None:
        """True once ``condition`` holds, False once ended, None after ``timeout``."""
        state = self._state
        lock = self._fanout.lock
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        if self._forget_owner is not _nothing:
            self._forget_owner()
            self._forget_owner = _nothing
        while True:
            with lock:
                if state.close_reason is not None:
                    return False
                if condition(state):
                    return True
                if state.waiter is not None:
                    raise RuntimeError(
                        f"Another task is already waiting on the subscription to "
                        f"{state.scope!r}; a Subscription has one consumer."
                    )
                waiter: asyncio.Future[None] = loop.create_future()
                state.waiter, state.loop = waiter, loop
            try:
                if deadline is None:
                    await waiter
                else:
                    # asyncio.wait() leaves the waiter alone on timeout, unlike
                    # wait_for(), so a quiet interval does not end the subscription.
                    done, _ = await asyncio.wait(
                        {waiter}, timeout=deadline - loop.time()
                    )
                    if not done:
                        with lock:
                            if _ended(state):
                                return False
                            if not condition(state):
                                return None
            except BaseException:
                # Cancelled (or torn down) while waiting: stop receiving at once.
                self.close()
                raise
            finally:
                with lock:
                    if state.waiter is waiter:
                        state.waiter = None


def _ended(state: SubscriberState) -> bool:
    return state.close_reason is not None


def _has_events(state: SubscriberState) -> bool:
    return state.started and bool(state.queue)


def _has_news(state: SubscriberState) -> bool:
    return (
        state.nudged
        or bool(state.closed_members)
        or (state.started and (bool(state.queue) or state.lagged))
    )


class SharedSubscription(Subscription):
    """One queue for many connections to a scope: a stream hub's.

    Each connection ``join()``s as a ``Member``: it is listed in presence and
    ``close_user()`` ends it, but events are queued once for all of them, and the
    reader filters them per member (audience, own changes). The members the bus
    ended are handed over by ``take_closed()``; a batch wakes the reader for them.
    """

    def join(self, connection: ConnectionInfo) -> Member:
        """Add a connection (presence counts it at once)."""
        return self._fanout.join(self._state, connection)

    def leave(self, member: Member) -> None:
        """Remove a connection that went away. Harmless to repeat."""
        self._fanout.leave(member, CloseReason.LEFT)

    @property
    def members(self) -> int:
        return len(self._state.members or ())

    def nudge(self) -> None:
        """Wake the reader with an empty batch (it has work of its own to do)."""
        self._fanout.nudge(self._state)

    def take_closed(self) -> list[Member]:
        """The members the bus ended since the last call (``close_reason`` says why)."""
        with self._fanout.lock:
            closed, self._state.closed_members = self._state.closed_members, []
        return closed

    def take_recheck(self) -> bool:
        """Whether ``bus.recheck()`` asked for its members' access to be checked
        since the last call."""
        with self._fanout.lock:
            recheck, self._state.recheck = self._state.recheck, False
        return recheck

    def queued_rechecks(self) -> list[ChangeEvent]:
        """The events waiting in the queue that carry ``recheck``: access must be
        checked before anything rendered meanwhile is sent."""
        with self._fanout.lock:
            return [event for _, event in self._state.queue if event.recheck]

    @property
    def latest_revision(self) -> int:
        """The revision of the newest event queued or read: where a member joining
        now starts."""
        with self._fanout.lock:
            state = self._state
            return state.queue[-1][0] if state.queue else state.revision
