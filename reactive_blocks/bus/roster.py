"""This process's entries in Redis's presence sets, kept fresh while they live.

Each connection is a member of its scope's sorted set, scored with the time (by
Redis's clock) at which it expires: twice the refresh interval after its last
renewal. A process that dies stops renewing, so its connections stop counting
within that time without anyone having to notice the death. A connection that
leaves moves to a second set for the grace period, where it is still listed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from reactive_blocks.bus.retry import REDIS_ERRORS
from reactive_blocks.bus.scripts import PRESENCE_LEAVE, PRESENCE_READ, PRESENCE_REFRESH

if TYPE_CHECKING:
    from collections.abc import Callable

    from reactive_blocks.bus.link import RedisLink
    from reactive_blocks.bus.state import Member, SubscriberState

__all__ = ["Roster"]

logger = logging.getLogger(__name__)

PROBE_SECONDS = 1.0  # after a failure, everyone is sent again this soon


class Roster:
    """Joins and leaves of this process's connections, sent to Redis in rounds."""

    def __init__(
        self,
        link: RedisLink,
        refresh: float,
        grace: float,
        on_change: Callable[[str], None],
    ) -> None:
        self.link = link
        self.refresh = refresh
        self.grace = grace
        # Told when a scope's presence changed without a join or leave here: a
        # dead process's connections expired, or Redis forgot some.
        self.on_change = on_change
        self._lock = threading.Lock()
        self._members: dict[SubscriberState | Member, tuple[str, str]] = {}
        self._changes: deque[tuple[str, str, str]] = deque()  # (op, scope, member)
        self._wake: asyncio.Event | None = None  # made on the link's loop

    def joined(self, state: SubscriberState | Member) -> None:
        connection = state.connection
        if connection is None:
            return
        since = time.time() - (time.monotonic() - connection.connected_at)
        member = json.dumps(
            {
                "c": connection.session_id,
                "u": connection.user_id,
                "t": round(since, 3),
                "p": self.link.process,
            },
            separators=(",", ":"),
        )
        with self._lock:
            self._members[state] = (state.scope, member)
        self._change("join", state.scope, member)

    def left(self, state: SubscriberState | Member) -> None:
        with self._lock:
            entry = self._members.pop(state, None)
        if entry is not None:
            self._change("leave", *entry)

    def forget(self) -> None:
        """Drop every entry without leaving (a forked child; or, in tests, a
        process treated as dead)."""
        with self._lock:
            self._members.clear()
        self._changes.clear()

    def _change(self, op: str, scope: str, member: str) -> None:
        self._changes.append((op, scope, member))
        self.link.post(self._poke)  # sent with the next round if not running

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def members(self, scope: str) -> list[dict[str, Any]]:
        """The members of ``scope`` in every process, live or lingering."""
        raw = await self.link.run(PRESENCE_READ, self.link.keys.presence(scope))
        found = []
        for item in raw:
            with contextlib.suppress(ValueError):
                member = json.loads(item)
                if isinstance(member, dict):
                    found.append(member)
        return found

    async def keep(self) -> None:
        """Send joins and leaves as they come, and renew every entry of this
        process before it expires (the link runs this on its loop)."""
        self._wake = asyncio.Event()
        if self._changes:
            self._wake.set()
        ttl_ms = int(self.refresh * 2000)
        next_refresh = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_refresh - time.monotonic())):
                    await self._wake.wait()
            self._wake.clear()
            changes = self._take_changes()
            renew = time.monotonic() >= next_refresh
            try:
                await self._send(changes, ttl_ms, renew)
            except REDIS_ERRORS as exc:
                self.link.failed(exc)
                next_refresh = time.monotonic() + PROBE_SECONDS  # sends everyone
                continue
            if renew:
                next_refresh = time.monotonic() + self.refresh

    def _take_changes(self) -> list[tuple[str, str, str]]:
        return [self._changes.popleft() for _ in range(len(self._changes))]

    async def _send(
        self, changes: list[tuple[str, str, str]], ttl_ms: int, renew: bool
    ) -> None:
        # A connection that joined and left since the last round only leaves.
        last: dict[tuple[str, str], str] = {}
        for op, scope, member in changes:
            last[(scope, member)] = op
        with self._lock:
            present = list(self._members.values()) if renew else []
        by_scope: dict[str, list[str]] = {}
        for scope, member in present:
            by_scope.setdefault(scope, []).append(member)
        joins: dict[str, int] = {}
        keys, grace = self.link.keys, int(self.grace * 1000)
        for (scope, member), op in last.items():
            if op == "leave":
                await self.link.run(PRESENCE_LEAVE, keys.presence(scope), grace, member)
                continue
            joins[scope] = joins.get(scope, 0) + 1
            if member not in by_scope.get(scope, ()):
                by_scope.setdefault(scope, []).append(member)
        for scope, members in by_scope.items():
            swept, added = await self.link.run(
                PRESENCE_REFRESH, keys.presence(scope), ttl_ms, *members
            )
            # A renewal that had to add its member again: Redis lost the set.
            if swept or added > joins.get(scope, 0):
                self.on_change(scope)
        if last or by_scope:
            self.link.succeeded()

    async def leave_all(self) -> None:
        """This process stops: its connections leave at once, without lingering.

        The link's loop runs this instead of ``keep()`` rounds, so nothing renews
        an entry after it left.
        """
        with self._lock:
            leaving = dict.fromkeys(self._members.values())
            self._members.clear()
        for _, scope, member in self._take_changes():
            leaving[(scope, member)] = None
        with contextlib.suppress(*REDIS_ERRORS, TimeoutError):
            async with asyncio.timeout(1):
                for scope, member in leaving:
                    await self.link.run(
                        PRESENCE_LEAVE, self.link.keys.presence(scope), 0, member
                    )
