"""The stream hubs of this process: which hub serves a page, and how many streams
may be open.

A connection is admitted first (counted against the limits at once, so opens that
race each other cannot pass together), then joins the hub of its page (same
consumer, template, scope and URL arguments), made when the first one arrives and
dropped when the last one leaves. A signed URL opens one stream at a time.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from reactive_blocks.conf import conf
from reactive_blocks.metrics import get_metrics
from reactive_blocks.runtime import get_bus, get_index
from reactive_blocks.streams.engine import Client, RenderCounts
from reactive_blocks.streams.throttle import OpenThrottle
from reactive_blocks.streams.trim import Trim

if TYPE_CHECKING:
    from collections.abc import Callable

    from reactive_blocks.bus.memory import ReactiveBus
    from reactive_blocks.index import DependencyIndex
    from reactive_blocks.streams.consumer import ReactiveStreamConsumer
    from reactive_blocks.streams.engine import Delivery, Send

__all__ = ["Hubs", "get_hubs"]


class Hubs:
    """The hubs of this process, by page, and the render counts of all of them."""

    def __init__(self, bus: ReactiveBus, index: DependencyIndex) -> None:
        self.bus = bus
        self.index = index
        self.counts = RenderCounts()
        self._hubs: weakref.WeakValueDictionary[tuple[object, ...], Delivery] = (
            weakref.WeakValueDictionary()
        )
        # Every joined stream by connection id (a token opens one at a time), and
        # the streams admitted, in all and per visitor (user, anonymous session).
        self._streams: dict[str, Client] = {}
        self._open = 0
        self._visitors: collections.Counter[str] = collections.Counter()
        self._throttle: OpenThrottle | None = None
        # After a block too large to stream, or streams dropped for not reading.
        self.trim = Trim()
        self._reruns: ThreadPoolExecutor | None = None
        bus.status_source = self.status

    def status(self) -> dict[str, Any]:
        """This process's streams, for its report (read on the bus's thread)."""
        return {
            "open": self._open,
            "visitors": len(self._visitors),
            "hubs": len(self._hubs),
            "renders": self.counts.counts(),
        }

    def close(self) -> None:
        """Let the re-run thread go (the bus or the index was replaced)."""
        if self._reruns is not None:
            self._reruns.shutdown(wait=False)

    @property
    def reruns(self) -> ThreadPoolExecutor:
        """The thread live pages re-run their views in (one: views run one at a
        time, as Django's own sync code does, off the thread that serves
        requests and stream opens)."""
        if self._reruns is None:
            self._reruns = ThreadPoolExecutor(1, thread_name_prefix="reactive-pages")
        return self._reruns

    def throttle(self, keys: list[tuple[str, int]]) -> int:
        """Count an open against each (key, scale) of its visitor: 0 if it may go
        on, else the seconds to wait (STREAM_OPENS_PER_SECOND, STREAM_OPENS_BURST)."""
        rate, burst = conf.STREAM_OPENS_PER_SECOND, conf.STREAM_OPENS_BURST
        throttle = self._throttle
        if throttle is None or (throttle.rate, throttle.burst) != (rate, burst):
            throttle = self._throttle = OpenThrottle(rate, burst)
        return max((throttle.allow(key, scale) for key, scale in keys), default=0)

    def forget_opens(self) -> None:
        """Forget how often each visitor opened streams (for tests)."""
        self._throttle = None

    def admit(
        self,
        consumer: ReactiveStreamConsumer,
        send: Send,
        on_end: Callable[[], None],
        *,
        cursor: int | None,
        epoch: str | None,
        visitor: str | None,
    ) -> Client | str:
        """A client for ``consumer``'s connection, counted in the limits at once (so
        that opens racing each other cannot all pass), or why it may not open. A
        stream that replaces its token's current one takes that one's place."""
        current = self._streams.get(consumer.connection_id)
        replacing = current is not None
        if self._open - replacing >= conf.MAX_STREAMS_PER_PROCESS:
            return "This server has as many streams open as it may."
        if visitor is not None:
            same = replacing and current is not None and current.visitor == visitor
            limit = (
                conf.MAX_STREAMS_PER_ADDRESS
                if visitor.startswith("address:")
                else conf.MAX_STREAMS_PER_VISITOR
            )
            if self._visitors[visitor] - same >= limit:
                return "Too many streams are open for this visitor."
        client = Client(consumer, send, on_end, cursor, epoch)
        client.visitor, client.counted = visitor, True
        self._open += 1
        get_metrics().connections_active.inc()
        if visitor is not None:
            self._visitors[visitor] += 1
        return client

    def stream_of(self, connection_id: str) -> Client | None:
        """The stream ``connection_id`` (a token) has open here, if any."""
        return self._streams.get(connection_id)

    async def retire(self, previous: Client | None) -> None:
        """End ``previous``, the stream a new one of the same token replaces.

        It is told to close, not to reconnect: two tabs sharing one token would
        otherwise take the stream from each other forever."""
        if previous is not None and previous.hub is not None:
            await previous.hub.end(previous, previous.consumer.close_event)

    def join(self, client: Client) -> None:
        """Serve an admitted client from its page's hub (made if need be)."""
        consumer = client.consumer
        key = (*consumer.hub_key(), asyncio.get_running_loop())
        hub = self._hubs.get(key)
        if hub is None or hub.closed:
            hub = consumer.make_hub(self, key)
            self._hubs[key] = hub
        self._streams[consumer.connection_id] = client
        hub.join(client)

    def released(self, client: Client) -> None:
        """``client`` ended: it no longer counts."""
        connection_id = client.consumer.connection_id
        if self._streams.get(connection_id) is client:
            del self._streams[connection_id]
        if not client.counted:
            return
        client.counted = False
        self._open -= 1
        get_metrics().connections_active.dec()
        visitor = client.visitor
        if visitor is not None:
            self._visitors[visitor] -= 1
            if self._visitors[visitor] <= 0:
                del self._visitors[visitor]

    def is_open(self, connection_id: str) -> bool:
        """Whether the stream of ``connection_id`` is being served here."""
        return connection_id in self._streams

    @property
    def open_count(self) -> int:
        """Streams admitted in this process."""
        return self._open

    @property
    def visitor_count(self) -> int:
        """Visitors (users, anonymous sessions) with a stream in this process."""
        return len(self._visitors)

    def leave(self, client: Client) -> None:
        if client.hub is not None:
            client.hub.leave(client)
        else:
            self.released(client)  # admitted, never joined

    def forget(self, hub: Delivery) -> None:
        if self._hubs.get(hub.key) is hub:
            del self._hubs[hub.key]


_lock = threading.Lock()
_hubs: Hubs | None = None


def get_hubs() -> Hubs:
    """The stream hubs of this process (one per live page and scope), and their
    render counts; made again when the bus or the index is (settings changed)."""
    global _hubs
    bus, index = get_bus(), get_index()
    with _lock:
        if _hubs is None or _hubs.bus is not bus or _hubs.index is not index:
            if _hubs is not None:
                _hubs.close()
            _hubs = Hubs(bus, index)
        return _hubs
