"""The in-process bus: fan ChangeEvents out from any thread to async subscribers.

It numbers events itself (one sequence for every scope) and delivers them through
the local fan-out that the Redis bus shares. It is the default: a laptop, the demo
and a single-process deployment need nothing else. Events emitted in another
process (a worker, ``manage.py shell``, a second server) do not reach it.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

from reactive_blocks.bus.fanout import Fanout
from reactive_blocks.bus.presence import (
    PresenceChanges,
    Viewers,
    check_presence_options,
)
from reactive_blocks.bus.state import CloseReason, Member, SubscriberState
from reactive_blocks.bus.status import process_report
from reactive_blocks.bus.subscription import (
    Position,
    SharedSubscription,
    Subscription,
)
from reactive_blocks.events import ChangeEvent, ConnectionInfo
from reactive_blocks.paths import validate_scope

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ReactiveBus"]

logger = logging.getLogger(__name__)

# Connections that left but are still listed (presence_grace), per scope.
MAX_LINGERING_PER_SCOPE = 1000


def check_maxsize(maxsize: object, name: str = "maxsize") -> int:
    if isinstance(maxsize, bool) or not isinstance(maxsize, int):
        raise TypeError(
            f"{name} must be an int, got {type(maxsize).__name__}: {maxsize!r}."
        )
    if maxsize < 1:
        raise ValueError(f"{name} must be at least 1, got {maxsize!r}.")
    return maxsize


def check_user_id(user_id: object) -> str:
    if not isinstance(user_id, str):
        raise TypeError(
            f"user_id must be a str, got {type(user_id).__name__}: {user_id!r}. "
            f"Use str(user.pk)."
        )
    return user_id


def check_session(session: object) -> str:
    if not isinstance(session, str) or not session:
        raise TypeError(
            f"session must be a non-empty str (ConnectionInfo.session), got "
            f"{type(session).__name__}: {session!r}."
        )
    return session


def require_connection(connection: object) -> None:
    if connection is not None and not isinstance(connection, ConnectionInfo):
        raise TypeError(
            f"connection must be a ConnectionInfo or None, got "
            f"{type(connection).__name__}: {connection!r}."
        )


class ReactiveBus:
    """Thread-safe publish/subscribe of ``ChangeEvent``s, keyed by scope.

    ``remembered_scopes`` bounds the scopes whose latest revision is kept: beyond
    it, the longest quiet scope is forgotten and counts as changed at the highest
    revision forgotten so far, so a page that recorded an older position resyncs
    rather than missing a change.

    ``presence_path`` makes joins and leaves of identified subscribers emit a change
    on that path (e.g. ``"presence"``), so a "who's viewing" block re-renders by
    itself; ``presence_grace`` keeps a leaving connection listed that many seconds
    (default 3 with a presence path, else 0), so a reload does not flicker.
    """

    # Whether events emitted in other processes reach this bus's subscribers.
    crosses_processes: bool = False

    def __init__(
        self,
        maxsize: int = 256,
        *,
        presence_path: str | None = None,
        presence_grace: float | None = None,
        remembered_scopes: int = 10_000,
    ) -> None:
        self.maxsize = check_maxsize(maxsize)
        self.remembered_scopes = check_maxsize(remembered_scopes, "remembered_scopes")
        self.presence_path, self.presence_grace = check_presence_options(
            presence_path, presence_grace
        )
        self._fanout = Fanout(maxsize)
        self._fanout.on_join = self._joined
        self._fanout.on_leave = self._left
        self._fanout.scope_revision = self._revision_for_end
        # Numbering and delivery share the fan-out's lock, so every subscriber
        # sees its scope's events in revision order whichever thread emits them.
        self._lock = self._fanout.lock
        # Every event gets the next number of one sequence; a scope's revision is
        # the number of its latest event. A page records the sequence when it is
        # rendered, so a change committed before its stream opens is still seen.
        self._sequence = 0
        # Names this bus instance: a cursor made by another (a restarted process)
        # says nothing about this one's history.
        self._epoch = secrets.token_hex(4)
        self._revisions: dict[str, int] = {}  # oldest change first
        self._forgotten = 0  # the highest revision of a scope no longer remembered
        self._emitted = 0
        self._listeners: tuple[Callable[[ChangeEvent], object], ...] = ()
        # Whether anything ever subscribed here (else say once that changes
        # emitted in this process reach no page served by another).
        self._reached_here = False
        self._lingering: dict[str, list[tuple[ConnectionInfo, float]]] = {}
        # What the streams layer adds to this process's report (its streams).
        self.status_source: Callable[[], dict[str, Any]] | None = None
        self._presence_changes = (
            None
            if self.presence_path is None
            else PresenceChanges(
                self.presence_path, self.presence_grace, self.emit_sync
            )
        )

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} maxsize={self.maxsize} "
            f"subscribers={self.subscriber_count} emitted={self._emitted}>"
        )

    # Emitting -----------------------------------------------------------------

    def emit_sync(self, event: ChangeEvent) -> None:
        """Send ``event`` to its scope's subscribers. Never blocks or raises.

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
        if not self.crosses_processes and not self._reached_here:
            self._warn_unreachable()
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

    async def emit(self, event: ChangeEvent) -> None:
        """Same as ``emit_sync()``, for async code (it does not wait either)."""
        self.emit_sync(event)

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

    def _publish(self, event: ChangeEvent) -> None:
        """Number ``event`` and deliver it (backends send it elsewhere first)."""
        with self._lock:
            self._sequence += 1
            self._emitted += 1
            revisions = self._revisions
            revisions.pop(event.scope, None)  # to the end: the newest change
            revision = revisions[event.scope] = self._sequence
            if len(revisions) > self.remembered_scopes:
                self._forgotten = revisions.pop(next(iter(revisions)))
            self._fanout.deliver(event.scope, revision, event, time.time())

    # Subscribing --------------------------------------------------------------

    def subscribe(
        self, scope: str, connection: ConnectionInfo | None = None
    ) -> Subscription:
        """Start receiving the events of ``scope``; iterate the result with ``async for``.

        The subscription is registered at once (presence and counts include it before
        the first ``await``); see ``Subscription`` for how it ends.
        """
        validate_scope(scope)
        require_connection(connection)
        return Subscription(self._fanout, self._register(scope, connection))

    def subscribe_shared(self, scope: str) -> SharedSubscription:
        """One subscription for many connections of ``scope``: each ``join()``s as
        a member (presence lists it, ``close_user()`` ends it), events are queued
        once for all, and the reader filters audiences per member. Stream hubs use
        it, so a change costs one wake-up per page, not one per browser."""
        validate_scope(scope)
        return SharedSubscription(self._fanout, self._register(scope, None, True))

    def _warn_unreachable(self) -> None:
        self._reached_here = True  # once per bus
        logger.warning(
            "A change was emitted on %s, which lives in this process only, and "
            "nothing here has subscribed: pages served by other processes never "
            "see it. Leave REACTIVE_BLOCKS['BUS'] unset for the default "
            "DatabaseBus, or use RedisBus.",
            type(self).__name__,
        )

    def _register(
        self, scope: str, connection: ConnectionInfo | None, shared: bool = False
    ) -> SubscriberState:
        self._reached_here = True
        with self._lock:
            return self._fanout.add(
                scope,
                connection,
                self._revisions.get(scope, self._forgotten),
                self._epoch,
                self._sequence,
                shared=shared,
            )

    def _joined(self, state: SubscriberState | Member) -> None:
        if state.connection is not None and self._presence_changes is not None:
            self._presence_changes.joined(state.scope)

    def _left(self, state: SubscriberState | Member) -> None:
        connection = state.connection
        if connection is None:
            return
        if self.presence_grace > 0 and state.close_reason is CloseReason.LEFT:
            now = time.monotonic()
            with self._lock:
                lingering = self._lingering.setdefault(state.scope, [])
                lingering.append((connection, now + self.presence_grace))
                del lingering[:-MAX_LINGERING_PER_SCOPE]
                # Forget what expired in every scope now and then, not only in
                # scopes someone asks about: the table stays as small as the leaves
                # of the last few seconds.
                if len(self._lingering) > len(self._fanout.scopes()) + 64:
                    self._prune_lingering(now)
        if self._presence_changes is not None:
            self._presence_changes.left(state.scope)

    def _revision_for_end(self, scope: str) -> int:
        return self._revisions.get(scope, self._forgotten)

    # Closing ------------------------------------------------------------------

    def close(self, scope: str | None = None) -> None:
        """End the subscribers of ``scope``, or of every scope. Harmless to repeat."""
        if scope is None:
            self._fanout.close(None, CloseReason.BUS_CLOSED)
            if self._presence_changes is not None:
                self._presence_changes.cancel()
            with self._lock:
                self._lingering.clear()
        else:
            self._fanout.close(validate_scope(scope), CloseReason.SCOPE_CLOSED)

    def close_user(self, user_id: str, scope: str | None = None) -> int:
        """End ``user_id``'s subscriptions (in ``scope`` only, if given); return how many."""
        check_user_id(user_id)
        if scope is not None:
            validate_scope(scope)
        return self._close_here(scope, "user_id", user_id)

    def close_session(self, session: str, scope: str | None = None) -> int:
        """End the subscriptions opened by ``session`` (a ``ConnectionInfo.session``
        digest: the streams of a browser that logged out); return how many."""
        check_session(session)
        if scope is not None:
            validate_scope(scope)
        return self._close_here(scope, "session", session)

    def _close_here(self, scope: str | None, attribute: str, value: str) -> int:
        return self._fanout.close_connections(scope, attribute, value)

    def recheck(self, scope: str) -> None:
        """Ask the streams of ``scope`` to check their access again (after a sharing
        change): stream hubs re-run ``has_permission()`` for each connection, with
        its user reloaded, and end the ones no longer allowed."""
        self._fanout.recheck(validate_scope(scope))

    # Observing ----------------------------------------------------------------

    def presence(self, scope: str) -> tuple[ConnectionInfo, ...]:
        """The connections subscribed to ``scope`` that identified themselves.

        With ``presence_grace``, connections that left less than that long ago are
        still listed.
        """
        validate_scope(scope)
        return (*self._fanout.connections(scope), *self._lingering_in(scope))

    def viewers(self, scope: str) -> Viewers:
        """The distinct users watching ``scope``, and how many anonymous tabs."""
        return Viewers.of(self.presence(scope))

    async def apresence(self, scope: str) -> tuple[ConnectionInfo, ...]:
        """``presence()`` for async code (the Redis bus does not block the loop)."""
        return self.presence(scope)

    async def aviewers(self, scope: str) -> Viewers:
        """``viewers()`` for async code."""
        return Viewers.of(await self.apresence(scope))

    def _prune_lingering(self, now: float) -> None:
        for scope, entries in list(self._lingering.items()):
            entries[:] = [(c, until) for c, until in entries if until > now]
            if not entries:
                del self._lingering[scope]

    def _lingering_in(self, scope: str) -> list[ConnectionInfo]:
        now = time.monotonic()
        with self._lock:
            entries = self._lingering.get(scope)
            if not entries:
                return []
            entries[:] = [(c, until) for c, until in entries if until > now]
            if not entries:
                del self._lingering[scope]
            return [c for c, _ in entries]

    def revision(self, scope: str) -> int:
        """The sequence number of the latest event emitted to ``scope`` (0: none);
        for a scope forgotten (``remembered_scopes``), a number at least as high."""
        with self._lock:
            return self._revisions.get(scope, self._forgotten)

    def position(self) -> Position:
        """This bus's epoch and latest sequence number, as a page records them."""
        with self._lock:
            return Position(self._epoch, self._sequence)

    async def aposition(self) -> Position:
        """``position()`` for async code (the Redis bus does not block the loop)."""
        return self.position()

    @property
    def epoch(self) -> str:
        """Names this bus's history: cursors of another epoch say nothing here."""
        return self._epoch

    @property
    def sequence(self) -> int:
        """The number given to the latest event of any scope (0 before the first)."""
        return self.position().sequence

    @property
    def emitted_count(self) -> int:
        return self._emitted

    # Reports ------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The bus's state in this process, for reports (backends add theirs)."""
        return {
            "reachable": True,
            "epoch": self.epoch,
            "emitted": self.emitted_count,
            "dropped": self.dropped_count,
            "subscribers": self.subscriber_count,
        }

    def report(self) -> dict[str, Any]:
        """This process's report (``manage.py reactive_status``)."""
        return process_report(
            type(self).__name__, self._fanout, self.health(), self.status_source
        )

    def statuses(self) -> list[dict[str, Any]]:
        """The latest report of every process this bus reaches: here, this one."""
        return [self.report()]

    @property
    def dropped_count(self) -> int:
        """Events lost to full subscriber queues in this process."""
        return self._fanout.dropped

    @property
    def subscriber_count(self) -> int:
        """Active subscriptions in this process."""
        return self._fanout.subscribers
