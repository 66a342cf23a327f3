"""The bus across processes: events and presence shared through Redis.

Select it with ``REACTIVE_BLOCKS["BUS"] = {"BACKEND": "reactive_blocks.RedisBus",
"OPTIONS": {"url": "redis://..."}}``. Any process emits (web servers, workers,
management commands); each process that serves streams holds one Redis
subscription and fans events out locally through the same code as the in-process
bus. Redis numbers every event atomically with its publication, so all processes
agree on revisions; whatever cannot be delivered for sure makes pages resync.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from reactive_blocks.bus.connector import Connector
from reactive_blocks.bus.link import RedisLink
from reactive_blocks.bus.memory import ReactiveBus, check_session, check_user_id
from reactive_blocks.bus.presence import PresenceChanges
from reactive_blocks.bus.retry import RedisUnavailable
from reactive_blocks.bus.scripts import Keys
from reactive_blocks.bus.state import CloseReason, Member, SubscriberState
from reactive_blocks.bus.subscription import Position
from reactive_blocks.bus.wire import control_payload
from reactive_blocks.events import ConnectionInfo
from reactive_blocks.paths import validate_scope

if TYPE_CHECKING:
    from reactive_blocks.events import ChangeEvent

__all__ = ["RedisBus"]

logger = logging.getLogger(__name__)
STATUS_CALL_SECONDS = 5.0  # how long reactive_status waits for the reports


class RedisBus(ReactiveBus):
    """``ReactiveBus``'s interface, for every process that shares one Redis.

    ``url`` is a redis-py URL (``redis://``, ``rediss://`` for TLS, ``unix://``,
    with a password in it or in the options); ``sentinels`` (a list of
    ``(host, port)``) with ``master_name`` reach a Redis Sentinel deployment
    instead. Further keyword options go to redis-py's client unchanged
    (``password``, ``username``, ``ssl_ca_certs``, ``ssl_certfile``...), and
    ``sentinel_kwargs`` to the Sentinel connections. ``prefix`` starts every key
    and channel name. ``outbox_size`` bounds the changes that wait while Redis is
    away; ``presence_refresh`` is how often this process renews its presence
    entries (a dead process stops counting within twice that).
    """

    crosses_processes = True

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        maxsize: int = 256,
        prefix: str = "reactive_blocks",
        outbox_size: int = 10_000,
        presence_refresh: float = 5.0,
        presence_path: str | None = None,
        presence_grace: float | None = None,
        sentinels: list[tuple[str, int]] | None = None,
        master_name: str | None = None,
        sentinel_kwargs: dict[str, Any] | None = None,
        **redis_options: Any,
    ) -> None:
        super().__init__(
            maxsize, presence_path=presence_path, presence_grace=presence_grace
        )
        _check_text(url, "url")
        _check_text(prefix, "prefix")
        _check_count(outbox_size, "outbox_size")
        refresh: object = presence_refresh
        if (
            isinstance(refresh, bool)
            or not isinstance(refresh, (int, float))
            or refresh <= 0
        ):
            raise ValueError(
                f"presence_refresh must be a positive number of seconds, got "
                f"{presence_refresh!r}."
            )
        self.url = url
        connector = Connector(
            url, redis_options, sentinels, master_name, sentinel_kwargs
        )
        self._link = RedisLink(
            connector,
            Keys(prefix),
            self._fanout,
            outbox_size=outbox_size,
            presence_refresh=float(presence_refresh),
            presence_grace=self.presence_grace,
            on_presence_swept=self._presence_swept,
        )
        self._link.report = self.report
        if self.presence_path is not None:
            self._presence_changes = PresenceChanges(
                self.presence_path,
                self.presence_grace,
                self.emit_sync,
                later=self._link.call_later,
            )

    def __repr__(self) -> str:
        return (
            f"<RedisBus {_without_password(self.url)!r} "
            f"subscribers={self.subscriber_count}>"
        )

    # Emitting and subscribing -------------------------------------------------------

    def _publish(self, event: ChangeEvent) -> None:
        with self._lock:
            self._emitted += 1
        self._link.outbox.send(("event", event))

    def _register(
        self, scope: str, connection: ConnectionInfo | None, shared: bool = False
    ) -> SubscriberState:
        listener = self._link.listener
        self._link.start()
        with self._lock:
            revision = listener.live.get(scope)
            if revision is not None:
                # Its channel is live here: it starts at the last revision seen.
                state = self._fanout.add(
                    scope,
                    connection,
                    revision,
                    listener.epoch or "",
                    None,
                    shared=shared,
                )
            else:
                # The listener subscribes, asks Redis where the scope stands, and
                # starts it (``Subscription.ready()``).
                state = self._fanout.add(
                    scope, connection, 0, "", None, started=False, shared=shared
                )
        listener.poke()
        return state

    def _joined(self, state: SubscriberState | Member) -> None:
        self._link.roster.joined(state)
        super()._joined(state)

    def _left(self, state: SubscriberState | Member) -> None:
        # Presence lingers in Redis itself (see PRESENCE_LEAVE), not here.
        self._link.roster.left(state)
        if state.connection is not None and self._presence_changes is not None:
            self._presence_changes.left(state.scope)
        self._link.listener.poke()

    def _presence_swept(self, scope: str) -> None:
        if self._presence_changes is not None:
            self._presence_changes.joined(scope)  # announce soon: someone vanished

    def _revision_for_end(self, scope: str) -> int:
        return self._link.listener.live.get(scope, 0)

    # Closing ---------------------------------------------------------------------------

    def close(self, scope: str | None = None) -> None:
        """End the subscribers of ``scope`` in every process; or, without a scope,
        this process's subscribers and its Redis connection (publishing what is
        queued first, for a few seconds at most)."""
        if scope is None:
            super().close()
            self._link.stop()
            return
        validate_scope(scope)
        self._link.outbox.send(
            ("control", control_payload("close_scope", self._link.process, scope=scope))
        )
        self._fanout.close(scope, CloseReason.SCOPE_CLOSED)

    def close_user(self, user_id: str, scope: str | None = None) -> int:
        """End ``user_id``'s streams (in ``scope`` only, if given) in every process;
        return how many ended in this one (the others end as the message arrives)."""
        check_user_id(user_id)
        return self._close_everywhere("close_user", scope, user_id=user_id)

    def close_session(self, session: str, scope: str | None = None) -> int:
        """End the streams ``session`` opened, in every process; return how many
        ended in this one."""
        check_session(session)
        return self._close_everywhere("close_session", scope, session=session)

    def _close_everywhere(self, kind: str, scope: str | None, **who: str) -> int:
        if scope is not None:
            validate_scope(scope)
        self._link.outbox.send(
            ("control", control_payload(kind, self._link.process, scope=scope, **who))
        )
        ((attribute, value),) = who.items()
        return self._close_here(scope, attribute, value)

    def recheck(self, scope: str) -> None:
        """Ask the streams of ``scope`` in every process to check their access."""
        validate_scope(scope)
        self._link.outbox.send(
            ("control", control_payload("recheck", self._link.process, scope=scope))
        )
        self._fanout.recheck(scope)

    # Observing ------------------------------------------------------------------------

    def presence(self, scope: str) -> tuple[ConnectionInfo, ...]:
        """Every live connection to ``scope`` in every process (a round trip to
        Redis, at most a second; while Redis is away, this process's only).

        From async code, use ``await bus.apresence(scope)``: this call blocks.
        """
        validate_scope(scope)
        try:
            members = self._link.call(lambda: self._link.roster.members(scope))
        except RedisUnavailable:
            return self._fanout.connections(scope)
        return self._merge(scope, members)

    async def apresence(self, scope: str) -> tuple[ConnectionInfo, ...]:
        validate_scope(scope)
        try:
            members = await self._link.acall(lambda: self._link.roster.members(scope))
        except RedisUnavailable:
            return self._fanout.connections(scope)
        return self._merge(scope, members)

    def _merge(
        self, scope: str, members: list[dict[str, Any]]
    ) -> tuple[ConnectionInfo, ...]:
        """This process's connections as it knows them, and the others' from Redis."""
        local = self._fanout.connections(scope)
        here = {c.session_id for c in local}
        found = list(local)
        now, wall = time.monotonic(), time.time()
        for member in members:
            mine = member.get("p") == self._link.process
            if mine and (member.get("c") in here or self.presence_grace == 0):
                continue  # listed from this process's own state, which is exact
            info = _connection(member, now, wall)
            if info is not None:
                found.append(info)
        return tuple(found)

    def revision(self, scope: str) -> int:
        validate_scope(scope)
        try:
            return self._link.call(lambda: self._link.position(scope))[2]
        except RedisUnavailable:
            return self._link.listener.live.get(scope, 0)

    def position(self) -> Position:
        """The epoch and sequence in Redis now (a round trip; while Redis is away,
        the latest this process has seen)."""
        try:
            epoch, sequence, _ = self._link.call(self._link.position)
        except RedisUnavailable:
            return self._known_position()
        return Position(epoch, sequence)

    async def aposition(self) -> Position:
        try:
            epoch, sequence, _ = await self._link.acall(self._link.position)
        except RedisUnavailable:
            return self._known_position()
        return Position(epoch, sequence)

    def _known_position(self) -> Position:
        listener = self._link.listener
        return Position(listener.epoch or "", listener.max_sequence)

    @property
    def epoch(self) -> str:
        return self._link.listener.epoch or self.position().epoch

    def health(self) -> dict[str, Any]:
        # Runs on the link's thread too: nothing here may wait for Redis.
        return {
            "reachable": not self._link.down,
            "epoch": self._link.listener.epoch or "",
            "emitted": self.emitted_count,
            "dropped": self.dropped_count,
            "subscribers": self.subscriber_count,
            "outbox_queued": self.queued_count,
            "outbox_dropped": self.outbox_dropped_count,
            "published": self.published_count,
            "connects": self.connect_count,
            "refused": self.refused_counts,
        }

    def statuses(self) -> list[dict[str, Any]]:
        """The latest report of every process on this Redis (this process's own
        only, marked unreachable, while Redis is away)."""
        try:
            return self._link.call(self._link.statuses, timeout=STATUS_CALL_SECONDS)
        except RedisUnavailable:
            return [self.report()]

    @property
    def outbox_dropped_count(self) -> int:
        """Changes dropped because the outbox was full while Redis was away."""
        return self._link.outbox.dropped

    @property
    def queued_count(self) -> int:
        """Changes waiting in the outbox for Redis."""
        return self._link.outbox.queued

    @property
    def published_count(self) -> int:
        """Messages this process published to Redis."""
        return self._link.outbox.published

    @property
    def publish_attempts(self) -> int:
        """Round trips this process's outbox made to Redis, including failed ones."""
        return self._link.outbox.attempts

    @property
    def malformed_count(self) -> int:
        """Messages on our channels that were not ours to read, and were ignored."""
        return self._link.listener.malformed

    @property
    def refused_counts(self) -> dict[str, int]:
        """Those messages by reason (``"unknown version"``, ``"not JSON"``...)."""
        return dict(self._link.listener.refused)

    @property
    def connect_count(self) -> int:
        """Times this process opened its subscription (1 + reconnections)."""
        return self._link.connects


def _connection(
    member: dict[str, Any], now: float, wall: float
) -> ConnectionInfo | None:
    session_id, user_id, since = member.get("c"), member.get("u"), member.get("t")
    if not isinstance(session_id, str) or not session_id:
        return None
    if user_id is not None and not isinstance(user_id, str):
        return None
    age = max(0.0, wall - since) if isinstance(since, (int, float)) else 0.0
    return ConnectionInfo(session_id, user_id, connected_at=now - age)


def _check_text(value: object, name: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}.")


def _check_count(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")


def _without_password(url: str) -> str:
    """``url`` with its password masked, for messages and logs."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
