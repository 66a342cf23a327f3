"""The local fan-out both backends share: queues, audience, lagged flags, counters.

A backend decides the revision of each event (a counter in this process, or Redis)
and hands the event to ``deliver()``; everything after that is the same code for
the in-process bus and for Redis. One ``threading.RLock`` guards the registry,
the queues and the counters, so the counters are exact and every subscriber sees
its scope's events in revision order. Delivery only appends to bounded deques and
hands wake-ups to the subscribers' own event loops; it never waits for a reader.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from reactive_blocks.bus.state import CloseReason, Member, SubscriberState
from reactive_blocks.metrics import get_metrics

if TYPE_CHECKING:
    from collections.abc import Iterable

    from reactive_blocks.events import ChangeEvent, ConnectionInfo

__all__ = ["Fanout"]

Hook = Callable[[SubscriberState | Member], None]


def _wake(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)


class Fanout:
    """Subscribers of this process, by scope, and the delivery of events to them."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        # Re-entrant: a Subscription garbage-collected while this thread holds
        # the lock unsubscribes through the same lock.
        self.lock = threading.RLock()
        # Copy-on-write tuples: delivery iterates a snapshot while others change it.
        self._scopes: dict[str, tuple[SubscriberState, ...]] = {}
        # Events delivered per scope while it has subscribers (for exact counts).
        self._counts: dict[str, int] = {}
        self.dropped = 0
        self.subscribers = 0  # connections: subscriptions, or members of shared ones
        # Told of every subscriber that joins or leaves; they must be quick.
        self.on_join: Hook | None = None
        self.on_leave: Hook | None = None
        # The backend's latest revision of a scope, for a subscription's end.
        self.scope_revision: Callable[[str], int] = lambda scope: 0

    # Registry -----------------------------------------------------------------

    def add(
        self,
        scope: str,
        connection: ConnectionInfo | None,
        start_revision: int,
        epoch: str,
        sequence: int | None,
        *,
        started: bool = True,
        shared: bool = False,
    ) -> SubscriberState:
        with self.lock:
            state = SubscriberState(
                scope,
                connection,
                self.maxsize,
                start_revision,
                self._counts.get(scope, 0),
                epoch,
                sequence,
                started=started,
                shared=shared,
            )
            self._scopes[scope] = (*self._scopes.get(scope, ()), state)
            self._counts.setdefault(scope, 0)
            if not shared:
                self.subscribers += 1
        if self.on_join is not None:
            self.on_join(state)
        return state

    def join(self, group: SubscriberState, connection: ConnectionInfo) -> Member:
        """Add a connection to a shared subscription."""
        member = Member(group, connection)
        with self.lock:
            if group.members is None or group.close_reason is not None:
                member.close_reason = group.close_reason or CloseReason.LEFT
                return member  # it ended meanwhile: so does the member
            group.members[member] = None
            self.subscribers += 1
        if self.on_join is not None:
            self.on_join(member)
        return member

    def leave(self, member: Member, reason: CloseReason) -> bool:
        """Remove a member; False if it had already left."""
        with self.lock:
            if member.close_reason is not None:
                return False
            member.close_reason = reason
            members = member.group.members
            if members is not None:
                members.pop(member, None)
            self.subscribers -= 1
        if self.on_leave is not None:
            self.on_leave(member)
        return True

    def remove(self, sub: SubscriberState, reason: CloseReason) -> bool:
        """Unregister ``sub`` and wake it; False if it had already ended."""
        with self.lock:
            if sub.close_reason is not None:
                return False
            sub.close_reason = reason
            sub.end_revision = max(sub.revision, self.scope_revision(sub.scope))
            sub.end_count = self._counts.get(sub.scope, 0)
            sub.discarded = len(sub.queue)
            sub.queue.clear()
            remaining = tuple(
                s for s in self._scopes.get(sub.scope, ()) if s is not sub
            )
            if remaining:
                self._scopes[sub.scope] = remaining
            else:
                self._scopes.pop(sub.scope, None)
                self._counts.pop(sub.scope, None)
            members = list(sub.members or ())
            if sub.members is None:
                self.subscribers -= 1
            waiter, loop = sub.waiter, sub.loop
            sub.waiter = None
        for member in members:  # they end with it, for the same reason
            self.leave(member, reason)
        if waiter is not None and loop is not None:
            self._wake_loops({loop: [waiter]})
        if self.on_leave is not None:
            self.on_leave(sub)
        return True

    def subscribers_of(self, scope: str | None = None) -> list[SubscriberState]:
        """The active subscribers of ``scope`` (of every scope when None)."""
        with self.lock:
            if scope is not None:
                return list(self._scopes.get(scope, ()))
            return [s for subs in self._scopes.values() for s in subs]

    def scopes(self) -> set[str]:
        """The scopes that have at least one subscriber in this process."""
        with self.lock:
            return set(self._scopes)

    def summary(self) -> list[tuple[str, int, int]]:
        """(scope, subscribers, connections) of every scope here, busiest first."""
        with self.lock:
            found = [
                (
                    scope,
                    len(subs),
                    sum(
                        len(s.members)
                        if s.members is not None
                        else s.connection is not None
                        for s in subs
                    ),
                )
                for scope, subs in self._scopes.items()
            ]
        return sorted(found, key=lambda row: (-row[2], -row[1], row[0]))

    def has_subscribers(self, scope: str) -> bool:
        return scope in self._scopes

    def connections(self, scope: str) -> tuple[ConnectionInfo, ...]:
        """The identified subscribers of ``scope``; those whose loop died are removed."""
        for sub in self.subscribers_of(scope):
            if sub.loop is not None and sub.loop.is_closed():
                self.remove(sub, CloseReason.LOOP_CLOSED)
        found: list[ConnectionInfo] = []
        with self.lock:
            for sub in self._scopes.get(scope, ()):
                if sub.members is not None:
                    found.extend(member.connection for member in sub.members)
                elif sub.connection is not None:
                    found.append(sub.connection)
        return tuple(found)

    # Delivery -----------------------------------------------------------------

    def deliver(
        self,
        scope: str,
        revision: int,
        event: ChangeEvent,
        published_at: float | None = None,
    ) -> None:
        """Queue ``event`` (numbered ``revision``, published at ``published_at``,
        a ``time.time()``) for the subscribers of ``scope``."""
        wakeups: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        audience = event.audience
        with self.lock:
            subs = self._scopes.get(scope, ())
            if not subs:
                return
            self._counts[scope] += 1
            for sub in subs:
                if sub.started and revision <= sub.start_revision:
                    continue  # already part of where it started
                if (
                    audience is not None
                    and sub.members is None  # shared ones filter per member
                    and (
                        sub.connection is None or sub.connection.user_id not in audience
                    )
                ):
                    continue
                queue = sub.queue
                if len(queue) == queue.maxlen:
                    if sub.loop is not None and sub.loop.is_closed():
                        # Its loop is gone and it can never read again.
                        self.remove(sub, CloseReason.LOOP_CLOSED)
                        sub.discarded += 1  # this event, counted in end_count
                        continue
                    # deque(maxlen=...) discards the oldest entry on append; if
                    # it asked for a recheck, the recheck must still happen.
                    sub.dropped += 1
                    sub.lagged = True
                    sub.recheck = sub.recheck or queue[0][1].recheck
                    self.dropped += 1
                    get_metrics().messages_dropped.labels(reason="queue_full").inc()
                queue.append((revision, event))
                if sub.since is None:
                    sub.since = published_at
                self._take_waiter(sub, wakeups)
        self._wake_loops(wakeups)

    def start(self, scope: str, revision: int, epoch: str) -> None:
        """Tell the waiting subscribers of ``scope`` where they start.

        Events they queued meanwhile that are not after ``revision`` are part of
        the start, so they are dropped.
        """
        wakeups: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        with self.lock:
            for sub in self._scopes.get(scope, ()):
                if sub.started:
                    continue
                sub.started = True
                # A hub waiting with nothing queued wakes too, to greet its clients.
                sub.nudged = sub.members is not None
                sub.start_revision = sub.revision = revision
                sub.start_epoch = epoch
                while sub.queue and sub.queue[0][0] <= revision:
                    sub.recheck = sub.recheck or sub.queue.popleft()[1].recheck
                self._take_waiter(sub, wakeups)
        self._wake_loops(wakeups)

    def lag(self, scopes: Iterable[str] | None = None) -> int:
        """Mark subscribers (of ``scopes``, or all) as having lost events; wake them.

        Their next batch comes back lagged, even if empty, so their streams resync.
        """
        wakeups: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        marked = 0
        with self.lock:
            targets = (
                self._scopes.values()
                if scopes is None
                else [self._scopes.get(s, ()) for s in scopes]
            )
            for subs in targets:
                for sub in subs:
                    if sub.started:  # one still starting has lost nothing yet
                        sub.lagged = True
                        # What was lost may have taken someone's access away.
                        sub.recheck = True
                        marked += 1
                        self._take_waiter(sub, wakeups)
        self._wake_loops(wakeups)
        return marked

    def nudge(self, sub: SubscriberState) -> None:
        """Wake ``sub``'s reader without an event."""
        wakeups: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        with self.lock:
            sub.nudged = True
            self._take_waiter(sub, wakeups)
        self._wake_loops(wakeups)

    def recheck(self, scope: str) -> None:
        """Wake the shared subscribers of ``scope`` to check their members' access."""
        wakeups: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        with self.lock:
            for sub in self.subscribers_of(scope):
                if sub.members is not None:
                    sub.recheck = sub.nudged = True
                    self._take_waiter(sub, wakeups)
        self._wake_loops(wakeups)

    def renumber(self, epoch: str) -> None:
        """The backend's numbering started again (Redis lost its data): subscribers
        count from revision 0 of ``epoch`` and resync."""
        with self.lock:
            for sub in self.subscribers_of():
                if sub.started:
                    sub.start_revision = sub.revision = 0
                    sub.start_epoch = epoch
        self.lag()

    def close(
        self,
        scope: str | None,
        reason: CloseReason,
        where: Callable[[SubscriberState | Member], bool] | None = None,
    ) -> int:
        """End the subscribers of ``scope`` (or all) that ``where`` selects: whole
        subscriptions, or single members of shared ones. Returns how many."""
        wakeups: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        with self.lock:
            subs = self.subscribers_of(scope)
            targets = [
                s for s in subs if where is None or (s.members is None and where(s))
            ]
            members = [
                m
                for s in subs
                if s.members is not None and where is not None
                for m in s.members
                if where(m)
            ]
        ended = sum(self.remove(sub, reason) for sub in targets)
        for member in members:
            if self.leave(member, reason):
                ended += 1
                with self.lock:
                    member.group.closed_members.append(member)
                    self._take_waiter(member.group, wakeups)
        self._wake_loops(wakeups)
        return ended

    def close_connections(self, scope: str | None, attribute: str, value: str) -> int:
        """End the connections (of ``scope``, or all) whose ``ConnectionInfo``
        has ``attribute`` equal to ``value``: a user or session lost access."""
        return self.close(
            scope,
            CloseReason.USER_CLOSED,
            lambda s: (
                s.connection is not None and getattr(s.connection, attribute) == value
            ),
        )

    # Wake-ups -----------------------------------------------------------------

    @staticmethod
    def _take_waiter(
        sub: SubscriberState,
        wakeups: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]],
    ) -> None:
        waiter = sub.waiter
        if waiter is not None and sub.loop is not None:
            sub.waiter = None  # one wake-up per wait is enough
            wakeups.setdefault(sub.loop, []).append(waiter)

    def _wake_loops(
        self, wakeups: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]]
    ) -> None:
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for loop, waiters in wakeups.items():
            if loop is running:
                loop.call_soon(_wake, waiters)
                continue
            try:
                loop.call_soon_threadsafe(_wake, waiters)
            except RuntimeError:
                # The loop was closed under its subscribers: they can never run again.
                gone = [s for s in self.subscribers_of() if s.loop is loop]
                for sub in gone:
                    self.remove(sub, CloseReason.LOOP_CLOSED)
