"""What the fan-out keeps for each subscriber, under its lock."""

from __future__ import annotations

import enum
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

    from reactive_blocks.events import ChangeEvent, ConnectionInfo

__all__ = ["CloseReason", "Member", "SubscriberState"]


class CloseReason(enum.Enum):
    """Why a subscription ended; a stream uses it to tell reconnect from stop."""

    LEFT = "left"  # the subscriber stopped iterating or closed itself
    SCOPE_CLOSED = "scope_closed"  # bus.close(scope)
    BUS_CLOSED = "bus_closed"  # bus.close()
    USER_CLOSED = "user_closed"  # bus.close_user(): access ended, do not reconnect
    LOOP_CLOSED = "loop_closed"  # the subscriber's event loop is gone


class SubscriberState:
    """Per-subscriber state owned by the fan-out. Only touched under its lock."""

    __slots__ = (
        "close_reason",
        "closed_members",
        "connection",
        "delivered",
        "discarded",
        "dropped",
        "end_count",
        "end_revision",
        "lagged",
        "loop",
        "members",
        "nudged",
        "queue",
        "recheck",
        "revision",
        "scope",
        "since",
        "start_count",
        "start_epoch",
        "start_revision",
        "start_sequence",
        "started",
        "waiter",
    )

    def __init__(
        self,
        scope: str,
        connection: ConnectionInfo | None,
        maxsize: int,
        start_revision: int,
        start_count: int,
        start_epoch: str,
        start_sequence: int | None,
        *,
        started: bool = True,
        shared: bool = False,
    ) -> None:
        self.scope = scope
        self.connection = connection
        self.queue: deque[tuple[int, ChangeEvent]] = deque(maxlen=maxsize)
        self.lagged = False
        self.delivered = 0
        self.dropped = 0
        self.discarded = 0
        self.end_revision: int | None = None
        # Events emitted to the scope before it subscribed and when it ended:
        # the difference is what it was offered (without audience filtering).
        self.start_count = start_count
        self.end_count: int | None = None
        self.start_revision = start_revision
        # The bus's epoch and sequence when the subscription started; the sequence
        # is None when the bus cannot know it exactly without asking (Redis).
        self.start_epoch = start_epoch
        self.start_sequence = start_sequence
        # False until a backend that must ask elsewhere (Redis) knows where the
        # subscription starts; events queued meanwhile up to it are discarded.
        self.started = started
        self.revision = start_revision
        self.close_reason: CloseReason | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        # A shared subscription serves many connections: they are its members
        # (listed in presence, closable one by one), and it receives every event
        # of its scope, its reader filtering audiences per member.
        self.members: dict[Member, None] | None = {} if shared else None
        self.closed_members: list[Member] = []  # ended by the bus, not yet seen
        self.nudged = False  # woken without events (its reader has work of its own)
        self.recheck = False  # its members' access must be checked again
        self.since: float | None = None  # publication time of the oldest queued


class Member:
    """One connection served through a shared subscription: listed in presence and
    closable by ``close_user()``, with no queue of its own."""

    __slots__ = ("__weakref__", "close_reason", "connection", "group", "scope")

    def __init__(self, group: SubscriberState, connection: ConnectionInfo) -> None:
        self.group = group
        self.scope = group.scope
        self.connection = connection
        self.close_reason: CloseReason | None = None

    def __repr__(self) -> str:
        return f"<Member {self.connection.session_id!r} of {self.scope!r}>"
