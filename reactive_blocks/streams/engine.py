"""The delivery engine: what every kind of stream shares once its connections
are gathered in a hub.

A hub (``hub.py`` for stream classes, ``pages/hub.py`` for live pages) decides what
each connection needs after a batch of changes; this is how it is delivered: SSE
frames encoded once whoever gets them (``Frames``), one write per connection
(straight to its socket under daphne: ``outlet.py``) that stops before the server
holds more than ``MAX_BUFFERED_BYTES`` for it, heartbeats
and stream lifetimes kept for all connections together (an idle connection costs
no task of its own), and the event that ends a response.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from reactive_blocks.conf import conf
from reactive_blocks.metrics import get_metrics
from reactive_blocks.rows.patch import RowsPatch
from reactive_blocks.rows.render import Keyed
from reactive_blocks.streams.backlog import Backlog
from reactive_blocks.streams.sse import encode_comment, encode_event
from reactive_blocks.streams.viewer import Viewer

if TYPE_CHECKING:
    from reactive_blocks.bus.state import Member
    from reactive_blocks.index import BlockRef
    from reactive_blocks.streams.consumer import ReactiveStreamConsumer
    from reactive_blocks.streams.hubs import Hubs

__all__ = ["PING", "Client", "Delivery", "Frames", "RenderCounts", "Send"]

logger = logging.getLogger(__name__)

Send = Callable[[Any], Awaitable[None]]
PING = {"type": "http.response.body", "body": encode_comment("ping"), "more_body": True}
# Lifetimes of clients that left, kept in a hub before it sweeps them out.
MIN_DEADLINES = 32
# The event that carries a keyed block's rows (rows/patch.py), not its HTML.
ROWS_EVENT = "reactive-rows"


class RenderCounts:
    """How much rendering the hubs of this process did, for tests and benchmarks."""

    def __init__(self) -> None:
        self.render_count = 0  # block renders really done (whole)
        self.row_count = 0  # rows of keyed blocks rendered alone
        self.context_count = 0  # shared contexts built
        self.connection_count = 0  # get_connection_context() results used
        self.reuse_count = 0  # connections served a render made once for several
        self.overflow_count = 0  # connections closed for not reading what they got
        self.oversized_count = 0  # blocks sent as a reload: too large to stream
        self.direct_count = 0  # fragments written straight to a socket (outlet.py)

    def rendered(self, results: Mapping[Any, object], *, personal: bool) -> None:
        """Count a round of renders: whole blocks, and rows of keyed blocks;
        ``personal``: made for one viewer (a page's view run for its user)."""
        whole = 0
        for result in results.values():
            if isinstance(result, Keyed):
                whole += result.full is not None
                self.row_count += result.rows_rendered
            else:
                whole += 1
        self.render_count += whole
        get_metrics().block_renders.labels(personal=str(personal).lower()).inc(whole)

    def rendered_per_viewer(self, count: int) -> None:
        """Count blocks rendered for one connection each."""
        self.render_count += count
        get_metrics().block_renders.labels(personal="true").inc(count)

    def overflowed(self) -> None:
        """A connection was closed for leaving what it was sent unread."""
        self.overflow_count += 1
        get_metrics().messages_dropped.labels(reason="unread").inc()

    def oversized(self) -> None:
        """A block too large to stream was sent as a reload."""
        self.oversized_count += 1
        get_metrics().messages_dropped.labels(reason="oversized").inc()

    def counts(self) -> dict[str, int]:
        return {
            "renders": self.render_count,
            "rows": self.row_count,
            "contexts": self.context_count,
            "connections": self.connection_count,
            "reused": self.reuse_count,
            "overflowed": self.overflow_count,
            "oversized": self.oversized_count,
            "direct": self.direct_count,
        }


class Client:
    """One browser connection in a hub."""

    __slots__ = (
        "backlog",
        "consumer",
        "counted",
        "cursor",
        "deadline",
        "epoch",
        "hub",
        "member",
        "on_end",
        "send",
        "started",
        "viewer",
        "visitor",
    )

    def __init__(
        self,
        consumer: ReactiveStreamConsumer,
        send: Send,
        on_end: Callable[[], None],
        cursor: int | None,
        epoch: str | None,
    ) -> None:
        self.consumer = consumer
        self.send = send
        self.backlog = Backlog(send)
        self.on_end = on_end  # called when it leaves the hub
        self.viewer = Viewer(consumer.connection_id, consumer.connection.user_id)
        self.cursor = cursor
        self.epoch = epoch
        self.deadline = time.monotonic() + conf.STREAM_MAX_SECONDS
        self.hub: Delivery | None = None
        self.member: Member | None = None
        self.started = False  # its first send decided (resync or not)
        self.visitor: str | None = None  # whose streams it counts among
        self.counted = False  # it holds a place in the process's stream limits


class Frames:
    """SSE frames of one batch, encoded once each whoever they are sent to.

    No message is larger than ``max_bytes``: a block whose frame would not fit, or
    the largest blocks of a batch that would not fit together, are sent as
    ``reload_event`` naming the block, and the page fetches them over a normal
    request. One huge save must not be copied into the buffer of every stream.
    """

    def __init__(
        self,
        revision: int,
        max_bytes: int | None = None,
        reload_event: str = "reactive-reload",
    ) -> None:
        self.id = str(revision)
        self.max_bytes = max_bytes
        self.reload_event = reload_event
        self.oversized = False  # a block was too large: memory to give back
        self._warned: set[BlockRef] = set()
        self._encoded: dict[tuple[BlockRef, bool], tuple[str, bytes]] = {}
        self._messages: dict[bytes, dict[str, Any]] = {}

    def message(self, fresh: list[tuple[BlockRef, str]]) -> dict[str, Any]:
        """The ASGI message that sends ``fresh``: one object for every viewer
        who gets the same bytes."""
        body = self.body(fresh)
        message = self._messages.get(body)
        if message is None:
            message = {"type": "http.response.body", "body": body, "more_body": True}
            self._messages[body] = message
        return message

    def body(self, fresh: list[tuple[BlockRef, str]]) -> bytes:
        # The id goes on the last frame of a batch only: a client cut off before
        # it reconnects from the batch before and gets everything again.
        parts = []
        for number, (ref, html) in enumerate(fresh, start=1):
            last = number == len(fresh)
            cached = self._encoded.get((ref, last))
            if cached is None or cached[0] is not html:
                name = ROWS_EVENT if isinstance(html, RowsPatch) else ref.block_name
                frame = encode_event(html, event=name, id=self.id if last else None)
                cached = self._encoded[(ref, last)] = (html, frame)
            parts.append(cached[1])
        if self.max_bytes is not None:
            self._fit(fresh, parts, self.max_bytes)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _fit(
        self, fresh: list[tuple[BlockRef, str]], parts: list[bytes], limit: int
    ) -> None:
        """Replace the largest frames with reloads until the message fits."""
        total = sum(map(len, parts))
        if total <= limit:
            return
        for number in sorted(range(len(parts)), key=lambda n: -len(parts[n])):
            if total <= limit:
                break
            ref = fresh[number][0]
            last = number == len(parts) - 1
            reload = encode_event(
                ref.block_name, event=self.reload_event, id=self.id if last else None
            )
            total += len(reload) - len(parts[number])
            if ref not in self._warned:
                self._warned.add(ref)
                logger.warning(
                    "Block %r of %r rendered %d bytes, more than fits "
                    "MAX_FRAGMENT_BYTES (%d) in its message: its pages are told "
                    "to fetch it instead.",
                    ref.block_name,
                    ref.template_name,
                    len(parts[number]),
                    limit,
                )
            parts[number] = reload
            self.oversized = True


class Delivery:
    """The connections of one hub, and what is done for all of them alike.

    Subclasses gather the connections (``join``), decide what each needs, and
    call ``_send()``; ``_release()`` undoes their own part of a join, and
    ``_expired()`` says how a stream whose lifetime is over ends.
    """

    def __init__(self, hubs: Hubs, key: tuple[object, ...], label: str) -> None:
        self.hubs, self.key = hubs, key
        self.label = label  # names the hub in logs
        self.clients: dict[Client, Any] = {}
        self.closed = False  # its loop has ended: it takes no more clients
        self._deadlines: list[tuple[float, int, Client]] = []
        self._counter = itertools.count()
        self._next_ping = time.monotonic() + conf.HEARTBEAT_SECONDS
        self._max_buffered = conf.MAX_BUFFERED_BYTES  # read once: checked per send
        self._max_fragment = conf.MAX_FRAGMENT_BYTES
        self._direct = conf.DIRECT_WRITES
        self._sent_count = 0  # fragments sent, not yet counted in the metrics
        # When the oldest change of the batch being delivered was published.
        self._since: float | None = None

    # Clients -------------------------------------------------------------------------

    def join(self, client: Client) -> None:
        raise NotImplementedError

    def _admit(self, client: Client, held: Any) -> None:
        """Count ``client`` in, with what the subclass holds for it."""
        client.hub = self
        self.clients[client] = held
        heapq.heappush(self._deadlines, (client.deadline, next(self._counter), client))

    def leave(self, client: Client) -> None:
        if client not in self.clients:
            return
        held = self.clients.pop(client)
        client.backlog.close()
        self._release(client, held)
        self.hubs.released(client)
        client.on_end()
        self._forget_deadlines()
        if not self.clients:
            self._emptied()

    def _forget_deadlines(self) -> None:
        """Drop the lifetimes of clients that left, once they are half the heap: a
        page that always has a viewer would otherwise keep every client that ever
        joined (and what it holds) until its lifetime ran out."""
        if len(self._deadlines) > 2 * len(self.clients) + MIN_DEADLINES:
            self._deadlines = [e for e in self._deadlines if e[2] in self.clients]
            heapq.heapify(self._deadlines)

    def _release(self, client: Client, held: Any) -> None:
        """Undo what ``join`` did beyond counting the client in."""

    def _emptied(self) -> None:
        """The last client left."""
        self.hubs.forget(self)

    async def end(self, client: Client, event: str) -> None:
        """End one connection's response, telling the browser what to do next."""
        if client not in self.clients:
            return
        self.leave(client)
        try:
            await client.send(
                {
                    "type": "http.response.body",
                    "body": encode_event("", event=event),
                    "more_body": False,
                }
            )
        except Exception:
            logger.debug("Could not end a stream of %s cleanly.", self.label)

    # Time ------------------------------------------------------------------------------

    def _wait(self) -> float:
        """Seconds until the next heartbeat or stream lifetime is due."""
        soonest = self._next_ping
        if self._deadlines:
            soonest = min(soonest, self._deadlines[0][0])
        return max(0.0, soonest - time.monotonic())

    async def _tick(self) -> None:
        """Heartbeats, and streams whose lifetime is over."""
        now = time.monotonic()
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, client = heapq.heappop(self._deadlines)
            if client in self.clients:
                await self.end(client, await self._expired(client))
        if now >= self._next_ping:
            self._next_ping = now + conf.HEARTBEAT_SECONDS
            for client in list(self.clients):
                await self._send(client, PING)

    async def _expired(self, client: Client) -> str:
        """The event that ends a stream whose lifetime is over: reconnect."""
        return client.consumer.reconnect_event

    # Writing ---------------------------------------------------------------------------

    def _frames(self, revision: int, reload_event: str) -> Frames:
        return Frames(revision, self._max_fragment, reload_event)

    def _published(self, since: float | None) -> None:
        """The batch about to be delivered began with a change published then."""
        self._since = since

    def _sent(self, frames: Frames) -> None:
        """After a batch: its commit-to-send time, and memory to give back if a
        block was too large to stream."""
        since, self._since = self._since, None
        if self._sent_count:
            get_metrics().messages_sent.inc(self._sent_count)  # once: it locks
            self._sent_count = 0
        if since is not None:
            get_metrics().commit_to_send.observe(max(0.0, time.time() - since))
        if frames.oversized:
            self.hubs.counts.oversized()
            self.hubs.trim.soon()

    async def _send(self, client: Client, message: dict[str, Any]) -> None:
        pending = client.backlog.pending()
        if pending and pending + len(message["body"]) > self._max_buffered:
            # The browser stopped reading: what it is sent would pile up in this
            # process. It reconnects (or not) and resyncs; its buffer goes now.
            logger.warning(
                "A stream of %s was closed: its client left %d bytes unread.",
                self.label,
                pending,
            )
            self.hubs.counts.overflowed()
            self.leave(client)
            client.backlog.abort()
            self.hubs.trim.soon()
            return
        try:
            if message is PING:
                await client.send(message)
            else:
                if self._direct and client.backlog.write(message["body"]):
                    self.hubs.counts.direct_count += 1
                else:
                    await client.send(message)
                self._sent_count += 1
        except Exception:
            get_metrics().messages_dropped.labels(reason="send_failed").inc()
            logger.exception(
                "A stream of %s failed while sending; it ends and the browser "
                "reconnects.",
                self.label,
            )
            await self.end(client, client.consumer.reconnect_event)
