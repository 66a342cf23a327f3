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
import contextlib
import logging
from typing import TYPE_CHECKING

from reactive_blocks.bus.retry import REDIS_ERRORS, Backoff
from reactive_blocks.bus.subscription import CloseReason
from reactive_blocks.bus.wire import (
    Malformed,
    Published,
    parse_control,
    parse_published,
)

if TYPE_CHECKING:
    from redis.asyncio.client import PubSub

    from reactive_blocks.bus.link import RedisLink

__all__ = ["Listener"]

logger = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 5.0  # a silent connection is pinged, and dropped if still silent


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
        self.malformed = 0
        self._logged: set[str] = set()
        # Only touched on the link's loop.
        self._subscribed: set[str] = set()
        self._sent: dict[str, int] = {}  # SUBSCRIBE commands sent per scope...
        self._confirmed: dict[str, int] = {}  # ...and confirmed, on this connection
        self._pending: dict[str, list[Published]] = {}  # not started: buffered
        self._resync_on_start = False
        self._wake: asyncio.Event | None = None  # made on the link's loop
        self._starting: set[asyncio.Task[None]] = set()

    def poke(self) -> None:
        """Subscribers came or went: reconcile the channels (from any thread)."""
        loop = self.link.loop()
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._woken)

    def _woken(self) -> None:
        if self._wake is not None:
            self._wake.set()

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
            tasks: list[asyncio.Task[None]] = []
            try:
                self.link.connects += 1
                await pubsub.subscribe(self.link.keys.control)
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
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                with contextlib.suppress(*REDIS_ERRORS):
                    await client.aclose()
                self._disconnected()
            await asyncio.sleep(backoff.next())

    def _disconnected(self) -> None:
        """Every scope must start again on the next connection, and resync."""
        with self.fanout.lock:
            self.live.clear()
        self._subscribed.clear()
        self._sent.clear()
        self._confirmed.clear()
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
            self._sent[scope] = self._sent.get(scope, 0) + 1
            self._pending[scope] = []
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
        self._confirmed[scope] = self._confirmed.get(scope, 0) + 1
        # Only the answer to the latest SUBSCRIBE means the channel is live now.
        if scope in self._pending and self._confirmed[scope] == self._sent.get(scope):
            task = asyncio.ensure_future(self._start(scope))
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)

    async def _start(self, scope: str) -> None:
        """The channel is live: start the scope's subscribers at its revision."""
        backoff = Backoff()
        while True:
            try:
                epoch, _, revision = await self.link.position(scope)
                break
            except REDIS_ERRORS as exc:
                self.link.failed(exc)
            await asyncio.sleep(backoff.next())
            if scope not in self._pending:
                return  # unsubscribed, or the connection was lost: started again
        buffered = self._pending.pop(scope, None)
        if buffered is None or scope not in self._subscribed:
            return  # unsubscribed meanwhile
        with self.fanout.lock:
            self.live[scope] = revision
            if self._resync_on_start:
                # After a lost connection, those already streaming may have
                # missed events: they resync. New ones start fresh.
                self.fanout.lag([scope])
            self.fanout.start(scope, revision, epoch)
        for published in buffered:
            self._apply(scope, published)

    # Messages ------------------------------------------------------------------------

    def _on_message(self, channel: bytes, data: bytes) -> None:
        keys = self.link.keys
        scope = keys.scope_of(channel)
        try:
            if scope is None:
                if channel in (keys.control, keys.control.encode()):
                    self._on_control(data)
                return
            if scope not in self._subscribed:
                return  # a late message after unsubscribing
            published = parse_published(data, scope)
        except Malformed as exc:
            self._refuse(exc, channel)
            return
        if scope in self._pending:
            self._pending[scope].append(published)
        else:
            self._apply(scope, published)

    def _apply(self, scope: str, published: Published) -> None:
        with self.fanout.lock:
            self._see_epoch(published.epoch, published.revision)
            known = self.live.get(scope)
            if known is None or published.revision <= known:
                return  # not ours any more, or part of where subscribers started
            self.live[scope] = published.revision
            if published.event is None or published.previous > known:
                self.fanout.lag([scope])  # a resync notice, or a gap: resync
            if published.event is not None:
                self.fanout.deliver(scope, published.revision, published.event)

    def _on_control(self, data: bytes) -> None:
        control = parse_control(data)
        if control.kind == "close_user" and control.user_id is not None:
            user_id = control.user_id
            self.fanout.close(
                control.scope,
                CloseReason.USER_CLOSED,
                lambda s: s.connection is not None and s.connection.user_id == user_id,
            )
        elif control.kind == "close_scope":
            self.fanout.close(control.scope, CloseReason.SCOPE_CLOSED)
        elif control.kind == "resync":
            self.fanout.lag()

    def _refuse(self, exc: Malformed, channel: bytes) -> None:
        self.malformed += 1
        if exc.kind not in self._logged:
            self._logged.add(exc.kind)
            logger.warning(
                "Ignored a message on %r that is not ours (%s); further messages "
                "refused for this reason are ignored without a log entry.",
                channel,
                exc,
            )

    # Positions -----------------------------------------------------------------------

    def saw_position(self, epoch: str, sequence: int) -> None:
        """Redis told us its epoch and a sequence number (any reply from a script)."""
        with self.fanout.lock:
            self._see_epoch(epoch, sequence)

    def _see_epoch(self, epoch: str, sequence: int) -> None:
        if self.epoch is not None and epoch != self.epoch:
            # Redis lost its data (or failed over to a replica that missed writes):
            # revisions start again, and every page resyncs.
            logger.warning(
                "Redis started a new history (epoch %s, was %s); every live page "
                "resyncs.",
                epoch,
                self.epoch,
            )
            for scope in self.live:
                self.live[scope] = 0
            self.fanout.renumber(epoch)
            self.max_sequence = 0
        self.epoch = epoch
        self.max_sequence = max(self.max_sequence, sequence)
