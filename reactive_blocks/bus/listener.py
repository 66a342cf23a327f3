"""The Redis bus's one subscription per process, and what it does with each message.

The listener subscribes to the channel of every scope that has subscribers in this
process (and unsubscribes when the last one leaves), plus the control channel.
When a channel becomes live it asks Redis for the scope's revision: subscribers
start there, and events up to it are part of their start. After that, every
event's ``prev`` must be the revision last seen, or something was missed and the
scope's subscribers resync. A lost connection is re-established with backoff and
every scope in use is started again and resynced.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from reactive_blocks.bus.outbox import MAX_KEPT
from reactive_blocks.bus.retry import REDIS_ERRORS, Backoff
from reactive_blocks.bus.state import CloseReason
from reactive_blocks.bus.wire import (
    Control,
    Malformed,
    Published,
    parse_control,
    parse_published,
    stream_id,
)
from reactive_blocks.metrics import get_metrics

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

    from redis.asyncio.client import PubSub

    from reactive_blocks.bus.link import RedisLink

__all__ = ["Listener"]

logger = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 5.0  # a silent connection is pinged, and dropped if still silent
MAX_BUFFERED = 1_000  # messages kept per scope while it starts; beyond: resync


class Pending:
    """A scope whose channel is being subscribed: messages wait here until the
    scope's revision is known. Each SUBSCRIBE gets its own, so an answer that
    arrives late for an earlier one cannot start the subscribers of a later one."""

    __slots__ = ("messages", "overflowed")

    def __init__(self) -> None:
        self.messages: list[Published] = []
        self.overflowed = False

    def keep(self, published: Published) -> None:
        if len(self.messages) < MAX_BUFFERED:
            self.messages.append(published)
        else:
            self.overflowed = True


class Listener:
    """Channel subscriptions and message handling; runs on the link's loop."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self.fanout = link.fanout
        # Shared with other threads, under the fan-out's lock: the scopes whose
        # channel is live, with the last revision seen on it; the epoch.
        self.live: dict[str, int] = {}
        self.epoch: str | None = None
        self.max_sequence = 0
        # Messages refused, by reason ("unknown version", "not JSON"...): a stray
        # publisher, or another release mid-deploy, shows here.
        self.refused: collections.Counter[str] = collections.Counter()
        # Only touched on the link's loop.
        self._subscribed: set[str] = set()
        self._unconfirmed: dict[str, int] = {}  # SUBSCRIBEs not yet answered
        self._pending: dict[str, Pending] = {}
        self._resync_on_start = False
        self._wake: asyncio.Event | None = None  # made on the link's loop
        self._background: set[asyncio.Task[None]] = set()
        # The last control applied (its place in the control stream).
        self._last_control: tuple[int, int] | None = None

    def poke(self) -> None:
        """Subscribers came or went: reconcile the channels (from any thread)."""
        self.link.post(self._woken)

    def _woken(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def forget(self) -> None:
        """Start over knowing nothing (a forked child)."""
        self.live.clear()
        self.epoch = None
        self.max_sequence = 0
        self._last_control = None

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # Connection ----------------------------------------------------------------------

    async def run(self) -> None:
        self._wake = asyncio.Event()
        backoff = Backoff()
        listened = False
        while True:
            if not listened and not self.fanout.scopes():
                # A process that only emits never subscribes to anything.
                await self._wake.wait()
                self._wake.clear()
                continue
            listened = True
            client = self.link.connector.client(listening=True)
            pubsub = client.pubsub()
            # A plain callable: redis-py types aclose() in some releases only.
            close_pubsub: Callable[[], Awaitable[object]] = pubsub.aclose
            tasks: list[asyncio.Task[None]] = []
            try:
                self.link.connects += 1
                if self._last_control is None:
                    self._last_control = await self._latest_control()
                await pubsub.subscribe(self.link.keys.control)
                await self._catch_up()
                # Reading and (un)subscribing go on side by side; if either fails,
                # the connection is dropped and everything starts again.
                tasks = [
                    asyncio.ensure_future(self._read(pubsub, backoff)),
                    asyncio.ensure_future(self._reconcile_forever(pubsub)),
                ]
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            except REDIS_ERRORS as exc:
                self.link.failed(exc)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                with contextlib.suppress(*REDIS_ERRORS):
                    await close_pubsub()
                with contextlib.suppress(*REDIS_ERRORS):
                    await client.aclose()
                self._disconnected()
            await asyncio.sleep(backoff.next())

    def _disconnected(self) -> None:
        """Every scope must start again on the next connection, and resync."""
        with self.fanout.lock:
            self.live.clear()
        self._subscribed.clear()
        self._unconfirmed.clear()
        self._pending.clear()
        self._resync_on_start = True

    async def _read(self, pubsub: PubSub, backoff: Backoff) -> None:
        pinged = False
        while True:
            if not getattr(pubsub.connection, "is_connected", False):
                # redis-py would reconnect and resubscribe silently here; what
                # was published meanwhile would be lost without anyone knowing.
                raise ConnectionError("the subscription's connection was closed")
            message = await pubsub.get_message(timeout=KEEPALIVE_SECONDS)
            if message is None:
                if pinged:
                    raise ConnectionError("Redis did not answer a PING")
                await pubsub.ping()
                pinged = True
                continue
            pinged = False
            kind = message["type"]
            if kind == "subscribe":
                backoff.reset()
                self.link.succeeded()
                self._confirmed_channel(message["channel"])
            elif kind == "message":
                self._on_message(message["channel"], message["data"])

    async def _reconcile_forever(self, pubsub: PubSub) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            await self._reconcile(pubsub)
            await self._wake.wait()

    async def _reconcile(self, pubsub: PubSub) -> None:
        wanted = self.fanout.scopes()
        new = sorted(wanted - self._subscribed)
        for scope in new:
            self._subscribed.add(scope)
            self._unconfirmed[scope] = self._unconfirmed.get(scope, 0) + 1
            self._pending[scope] = Pending()
        if new:
            await pubsub.subscribe(*(self.link.keys.channel(s) for s in new))
        gone = []
        with self.fanout.lock:
            for scope in self._subscribed - wanted:
                if not self.fanout.has_subscribers(scope):
                    self.live.pop(scope, None)
                    gone.append(scope)
        for scope in gone:
            self._subscribed.discard(scope)
            self._pending.pop(scope, None)
        if gone:
            await pubsub.unsubscribe(*(self.link.keys.channel(s) for s in gone))

    def _confirmed_channel(self, channel: bytes) -> None:
        scope = self.link.keys.scope_of(channel)
        if scope is None:
            return
        left = self._unconfirmed.get(scope, 1) - 1
        if left > 0:
            self._unconfirmed[scope] = left
            return  # the answer to an earlier SUBSCRIBE: not live yet
        self._unconfirmed.pop(scope, None)
        pending = self._pending.get(scope)
        if pending is not None:
            self._spawn(self._start(scope, pending))

    async def _start(self, scope: str, pending: Pending) -> None:
        """The channel is live: start the scope's subscribers at its revision."""
        backoff = Backoff()
        while True:
            try:
                epoch, _, revision = await self.link.position(scope)
                break
            except REDIS_ERRORS as exc:
                self.link.failed(exc)
            await asyncio.sleep(backoff.next())
            if self._pending.get(scope) is not pending:
                return  # unsubscribed, or the connection was lost: started again
        if self._pending.get(scope) is not pending:
            return
        del self._pending[scope]
        with self.fanout.lock:
            self.live[scope] = revision
            if self._resync_on_start or pending.overflowed:
                # After a lost connection, those already streaming may have
                # missed events: they resync. New ones start fresh.
                self.fanout.lag([scope])
            self.fanout.start(scope, revision, epoch)
        for published in pending.messages:
            self._apply(scope, published)

    # Messages ------------------------------------------------------------------------

    def _on_message(self, channel: bytes, data: bytes) -> None:
        keys = self.link.keys
        scope = keys.scope_of(channel)
        try:
            if scope is None:
                if channel in (keys.control, keys.control.encode()):
                    self._on_control(parse_control(data))
                return
            if scope not in self._subscribed:
                return  # a late message after unsubscribing
            published = parse_published(data, scope)
        except Malformed as exc:
            self._refuse(exc, channel)
            if exc.kind == "unknown version" and scope in self.live:
                # Likely a newer version of this library mid-deploy: whatever it
                # said, this scope's pages resync rather than miss it.
                self.fanout.lag([scope])
            return
        pending = self._pending.get(scope)
        if pending is not None:
            pending.keep(published)
        else:
            self._apply(scope, published)

    def _apply(self, scope: str, published: Published) -> None:
        with self.fanout.lock:
            known = self.live.get(scope)
            if known is None:
                return  # not ours any more
            if published.epoch != self.epoch:
                # Epochs have no order: ask Redis which history is current. The
                # scope resyncs either way.
                self.fanout.lag([scope])
                self._spawn(self._check_epoch())
                return
            if published.revision <= known:
                return  # part of where subscribers started
            self.live[scope] = published.revision
            self.max_sequence = max(self.max_sequence, published.revision)
            if published.event is None or published.previous > known:
                self.fanout.lag([scope])  # a resync notice, or a gap: resync
            if published.event is not None:
                at = published.published_at
                if at is not None:
                    get_metrics().bus_lag.observe(max(0.0, time.time() - at))
                self.fanout.deliver(scope, published.revision, published.event, at)

    async def _check_epoch(self) -> None:
        with contextlib.suppress(*REDIS_ERRORS):
            await self.link.position()  # its answer is authoritative

    async def _latest_control(self) -> tuple[int, int]:
        client = self.link.client
        assert client is not None
        latest = _entries(await client.xrevrange(self.link.keys.controls, count=1))
        return stream_id(latest[0][0]) if latest else (0, 0)

    async def _catch_up(self) -> None:
        """Apply the controls sent while this process was not listening."""
        client, last = self.link.client, self._last_control
        assert client is not None
        assert last is not None
        key = self.link.keys.controls
        entries = _entries(
            await client.xrange(key, min=f"({last[0]}-{last[1]}", count=MAX_KEPT)
        )
        oldest = _entries(await client.xrange(key, count=1))
        if oldest and stream_id(oldest[0][0]) > last and len(entries) >= MAX_KEPT:
            # Redis trimmed controls this process never saw: it cannot tell whose
            # streams they ended, so every page here resyncs.
            logger.warning("Missed controls while disconnected; every page resyncs.")
            self.fanout.lag()
        for place, message in entries:
            try:
                self._on_control(parse_control(message, place))
            except Malformed as exc:
                self._refuse(exc, key.encode())

    def _on_control(self, control: Control) -> None:
        if self._last_control is not None and control.id <= self._last_control:
            return  # applied already (announced while catching up)
        self._last_control = control.id
        if control.sender == self.link.process:
            return  # this process acted on it when it sent it
        if control.kind == "close_user" and control.user_id is not None:
            self.fanout.close_connections(control.scope, "user_id", control.user_id)
        elif control.kind == "close_session" and control.session is not None:
            self.fanout.close_connections(control.scope, "session", control.session)
        elif control.kind == "recheck" and control.scope is not None:
            self.fanout.recheck(control.scope)
        elif control.kind == "close_scope":
            self.fanout.close(control.scope, CloseReason.SCOPE_CLOSED)
        elif control.kind == "resync":
            self.fanout.lag()

    @property
    def malformed(self) -> int:
        return sum(self.refused.values())

    def _refuse(self, exc: Malformed, channel: bytes) -> None:
        self.refused[exc.kind] += 1
        reason = exc.kind.replace(" ", "_")  # "unknown version": unknown_version
        get_metrics().bus_messages_refused.labels(reason=reason).inc()
        if self.refused[exc.kind] == 1:  # once per process and reason
            logger.warning(
                "Ignored a message on %r that is not ours (%s); further messages "
                "refused for this reason are ignored without a log entry.",
                channel,
                exc,
            )

    # Positions -----------------------------------------------------------------------

    def saw_position(self, epoch: str, sequence: int) -> None:
        """Redis answered a script with its epoch and a sequence number: that is
        where it stands now (unlike a message, which may be from before)."""
        with self.fanout.lock:
            if self.epoch is not None and epoch != self.epoch:
                # Redis lost its data or failed over: revisions start again in a
                # new history, and every page resyncs.
                logger.warning(
                    "Redis started a new history (epoch %s, was %s); every live "
                    "page resyncs.",
                    epoch,
                    self.epoch,
                )
                for scope in self.live:
                    self.live[scope] = 0
                self.fanout.renumber(epoch)
                self.max_sequence = 0
            self.epoch = epoch
            self.max_sequence = max(self.max_sequence, sequence)


def _entries(reply: Any) -> list[tuple[bytes, bytes]]:
    """(id, message) of each entry of an XRANGE/XREVRANGE reply."""
    return [(place, fields.get(b"m", b"")) for place, fields in reply or () if place]
