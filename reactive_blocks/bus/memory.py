"""The in-process bus: fan ChangeEvents out from any thread to async subscribers.

One ``threading.RLock`` guards the registry, the queues and the counters, so the
counters are exact and every subscriber sees its scope's events in revision order.
Emitters only append to bounded deques under that lock and hand wake-ups to the
subscribers' own event loops; they never wait for a subscriber.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from typing import TYPE_CHECKING

from reactive_blocks.bus.subscription import (
    Batch,
    CloseReason,
    SubscriberState,
    Subscription,
)
from reactive_blocks.events import ChangeEvent, ConnectionInfo
from reactive_blocks.paths import require_name

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Batch", "CloseReason", "ReactiveBus", "Subscription"]

logger = logging.getLogger(__name__)


def _require_connection(connection: object) -> None:
    if connection is not None and not isinstance(connection, ConnectionInfo):
        raise TypeError(
            f"connection must be a ConnectionInfo or None, got "
            f"{type(connection).__name__}: {connection!r}."
        )


def _wake(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)


class ReactiveBus:
    """Thread-safe publish/subscribe of ``ChangeEvent``s, keyed by scope."""

    def __init__(self, maxsize: int = 256) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise TypeError(
                f"maxsize must be an int, got {type(maxsize).__name__}: {maxsize!r}."
            )
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize!r}.")
        self.maxsize = maxsize
        # Re-entrant: a Subscription garbage-collected while this thread holds
        # the lock unsubscribes through the same lock.
        self._lock = threading.RLock()
        # Copy-on-write tuples: emitters iterate a snapshot while others change it.
        self._scopes: dict[str, tuple[SubscriberState, ...]] = {}
        # Every event gets the next number of one sequence; a scope's revision is
        # the number of its latest event. A page records the sequence when it is
        # rendered, so a change committed before its stream opens is still seen.
        self._sequence = 0
        # Names this bus instance: a cursor made by another (a restarted process)
        # says nothing about this one's history.
        self.epoch = secrets.token_hex(4)
        self._revisions: dict[str, int] = {}
        self._counts: dict[str, int] = {}
        self._emitted = 0
        self._dropped = 0
        self._subscribers = 0
        self._listeners: tuple[Callable[[ChangeEvent], object], ...] = ()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} maxsize={self.maxsize} "
            f"subscribers={self._subscribers} emitted={self._emitted}>"
        )

    # Emitting -----------------------------------------------------------------

    def emit_sync(self, event: ChangeEvent) -> None:
        """Queue ``event`` for its scope's subscribers. Never blocks or raises.

        Emitters are request threads and signal handlers that must not fail because
        of the bus (guarantee 2), so even a wrong argument is logged, not raised.
        """
        candidate: object = event  # callers without type checking pass anything
        if not isinstance(candidate, ChangeEvent):
            logger.error(
                "emit_sync() takes a ChangeEvent, got %s: %r; nothing was emitted.",
                type(event).__name__,
                event,
            )
            return
        try:
            self._publish(event)
        except Exception:
            logger.exception("Could not deliver %r; emitter unaffected.", event)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                logger.exception(
                    "A bus listener failed on %r; emitter unaffected.", event
                )

    def add_listener(
        self, listener: Callable[[ChangeEvent], object]
    ) -> Callable[[], None]:
        """Call ``listener(event)`` for every event emitted (tests, metrics, logs).

        Returns a function that removes it. Listeners run in the emitting thread and
        must be quick; what they raise is logged, never passed to the emitter.
        """
        if not callable(listener):
            raise TypeError(f"listener must be callable, got {listener!r}.")
        with self._lock:
            self._listeners = (*self._listeners, listener)

        def remove() -> None:
            with self._lock:
                self._listeners = tuple(x for x in self._listeners if x is not listener)

        return remove

    async def emit(self, event: ChangeEvent) -> None:
        """Same as ``emit_sync()``, for async code (it does not wait either)."""
        self.emit_sync(event)

    def _publish(self, event: ChangeEvent) -> None:
        wakeups: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        audience = event.audience
        with self._lock:
            self._sequence += 1
            revision = self._revisions[event.scope] = self._sequence
            self._counts[event.scope] = self._counts.get(event.scope, 0) + 1
            self._emitted += 1
            for sub in self._scopes.get(event.scope, ()):
                if audience is not None and (
                    sub.connection is None or sub.connection.user_id not in audience
                ):
                    continue
                queue = sub.queue
                if len(queue) == queue.maxlen:
                    if sub.loop is not None and sub.loop.is_closed():
                        # Its loop is gone and it can never read again.
                        self._remove(sub, CloseReason.LOOP_CLOSED)
                        sub.discarded += 1  # this event, counted in end_revision
                        continue
                    # deque(maxlen=...) discards the oldest entry on append.
                    sub.dropped += 1
                    sub.lagged = True
                    self._dropped += 1
                queue.append((revision, event))
                waiter = sub.waiter
                if waiter is not None and sub.loop is not None:
                    sub.waiter = None  # one wake-up per wait is enough
                    wakeups.setdefault(sub.loop, []).append(waiter)
        self._wake_loops(wakeups)

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
                self._end_loop(loop)

    def _end_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            gone = [s for subs in self._scopes.values() for s in subs if s.loop is loop]
            for sub in gone:
                self._remove(sub, CloseReason.LOOP_CLOSED)

    # Subscribing --------------------------------------------------------------

    def subscribe(
        self, scope: str, connection: ConnectionInfo | None = None
    ) -> Subscription:
        """Start receiving the events of ``scope``; iterate the result with ``async for``.

        The subscription is registered at once (presence and counts include it before
        the first ``await``); see ``Subscription`` for how it ends.
        """
        require_name(scope, name="scope")
        _require_connection(connection)
        with self._lock:
            state = SubscriberState(
                scope,
                connection,
                self.maxsize,
                self._revisions.get(scope, 0),
                self._counts.get(scope, 0),
            )
            self._scopes[scope] = (*self._scopes.get(scope, ()), state)
            self._subscribers += 1
        return Subscription(self, state)

    def _remove(self, sub: SubscriberState, reason: CloseReason) -> bool:
        """Unregister ``sub`` and wake it; False if it had already ended."""
        with self._lock:
            if sub.close_reason is not None:
                return False
            sub.close_reason = reason
            sub.end_revision = self._revisions.get(sub.scope, 0)
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
            self._subscribers -= 1
            waiter, loop = sub.waiter, sub.loop
            sub.waiter = None
        if waiter is not None and loop is not None:
            self._wake_loops({loop: [waiter]})
        return True

    # Closing ------------------------------------------------------------------

    def close(self, scope: str | None = None) -> None:
        """End the subscribers of ``scope``, or of every scope. Harmless to repeat."""
        with self._lock:
            if scope is None:
                targets = [s for subs in self._scopes.values() for s in subs]
                reason = CloseReason.BUS_CLOSED
            else:
                targets = list(self._scopes.get(scope, ()))
                reason = CloseReason.SCOPE_CLOSED
            for sub in targets:
                self._remove(sub, reason)

    def close_user(self, user_id: str, scope: str | None = None) -> int:
        """End ``user_id``'s subscriptions (in ``scope`` only, if given); return how many."""
        if not isinstance(user_id, str):
            raise TypeError(
                f"user_id must be a str, got {type(user_id).__name__}: {user_id!r}. "
                f"Use str(user.pk)."
            )
        if scope is not None:
            require_name(scope, name="scope")
        with self._lock:
            pools = [self._scopes.get(scope, ())] if scope else self._scopes.values()
            targets = [
                s
                for subs in pools
                for s in subs
                if s.connection is not None and s.connection.user_id == user_id
            ]
            return sum(self._remove(sub, CloseReason.USER_CLOSED) for sub in targets)

    # Observing ----------------------------------------------------------------

    def presence(self, scope: str) -> tuple[ConnectionInfo, ...]:
        """The connections subscribed to ``scope`` that identified themselves."""
        with self._lock:
            for sub in self._scopes.get(scope, ()):
                if sub.loop is not None and sub.loop.is_closed():
                    self._remove(sub, CloseReason.LOOP_CLOSED)
            subs = self._scopes.get(scope, ())
        return tuple(s.connection for s in subs if s.connection is not None)

    def revision(self, scope: str) -> int:
        """The sequence number of the latest event emitted to ``scope`` (0: none)."""
        with self._lock:
            return self._revisions.get(scope, 0)

    @property
    def sequence(self) -> int:
        """The number given to the latest event of any scope (0 before the first)."""
        return self._sequence

    @property
    def emitted_count(self) -> int:
        return self._emitted

    @property
    def dropped_count(self) -> int:
        return self._dropped

    @property
    def subscriber_count(self) -> int:
        return self._subscribers
