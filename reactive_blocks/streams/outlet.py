"""A streaming response's socket under daphne: fragments written to it at once.

daphne hands every ``http.response.body`` to Twisted, which keeps the bytes and
asks the event loop to say when the socket can take them. For one change sent to
a thousand streams that is a thousand trips through daphne's and Twisted's
layers, two changes to the loop's selector and one wake-up each: more than the
rest of the fan-out costs (docs/performance.md). Yet the socket takes the bytes
at once almost every time. So once a response's headers are out, an ``Outlet``
writes its fragments with one ``send()`` on the socket
(``ISystemHandle.getHandle()``), framed as Twisted frames them (HTTP/1.1 chunks),
whenever Twisted holds nothing for the connection. What the socket does not take,
and everything written while Twisted holds something, goes to the transport's
``write()``, in order.

Twisted says whether it holds something through the producer API: with the
transport's ``bufferSize`` at 0, a push producer registered on the request is
paused on every byte Twisted must keep and resumed once it wrote them all. Only
public Twisted interfaces are used. Anything else (another server, TLS, HTTP/2,
a producer already registered) leaves the stream on the ordinary path.

``bufferSize`` is also how much Twisted reads from the socket at once, so while an
outlet is open a client that sends anything on the connection reads as one that
closed it: its stream ends, and the browser reconnects and resumes. A stream's
client sends nothing after its request (an ``EventSource`` never does), and a
request pipelined behind an endless response would never be answered anyway; a
client closing the connection is how the stream normally ends.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any

__all__ = ["Outlet", "daphne_request"]

logger = logging.getLogger(__name__)

NEW, OPEN, CLOSED = "new", "open", "closed"


class Outlet:
    """The socket of one daphne response, written to directly when it may be."""

    __slots__ = ("_buffer_size", "_held", "_request", "_socket", "_state", "transport")

    def __init__(self, request: Any, transport: Any) -> None:
        self._request = request
        self.transport = transport
        self._socket: Any = None
        self._state = NEW
        # Twisted may hold bytes of this connection: write through it. True until
        # Twisted says it wrote everything (it has the headers when we begin).
        self._held = True
        self._buffer_size = 0

    @classmethod
    def of(cls, send: Any) -> Outlet | None:
        """The outlet of a response served by daphne over plain TCP, else None."""
        request = daphne_request(send)
        if request is None:
            return None
        from twisted.internet import tcp
        from twisted.internet.interfaces import ISSLTransport
        from twisted.web.http import HTTPChannel, Request

        channel = getattr(request, "channel", None)
        transport = getattr(channel, "transport", None)
        if not (
            isinstance(request, Request)
            and isinstance(channel, HTTPChannel)
            and isinstance(transport, tcp.Connection)
            and not ISSLTransport.providedBy(transport)
        ):
            return None
        return cls(request, transport)

    def write(self, data: bytes) -> bool:
        """Write body bytes of the response, in order with everything written
        before; False when it cannot be done here (send them as a message)."""
        request, transport = self._request, self.transport
        if (
            self._state is CLOSED
            or request.finished
            or not transport.connected
            or transport.disconnecting
        ):
            return False
        if self._state is NEW and not self._open():
            return False
        if not data:
            return True  # an empty chunk would end the response
        if request.chunked:
            data = b"%x\r\n%b\r\n" % (len(data), data)
        if not self._held:
            try:
                sent = self._socket.send(data)
            except OSError:
                sent = 0  # full, or broken: Twisted's write finds out which
            if sent == len(data):
                return True
            data = data[sent:]
        transport.write(data)  # Twisted now holds bytes: it pauses us
        return True

    def _open(self) -> bool:
        """Ask Twisted to tell this outlet whether it holds bytes."""
        request, transport = self._request, self.transport
        if not request.startedWriting:
            return False  # the headers go first, the ordinary way
        try:
            request.registerProducer(self, True)
        except (ValueError, RuntimeError):
            # Someone else's producer: leave it be. The request keeps ours when
            # only its channel refused it.
            if request.producer is self:
                request.producer = None
            self._state = CLOSED
            return False
        self._socket = transport.getHandle()
        # 0 here is an outlet's that was never put back (a request finished
        # under it): the transport's own size is its class's.
        self._buffer_size = transport.bufferSize or type(transport).bufferSize
        transport.bufferSize = 0
        self._state = OPEN
        return True

    def close(self) -> None:
        """Hand the connection back to Twisted as it was (before the response
        ends, or when it went)."""
        if self._state is not OPEN:
            self._state = CLOSED
            return
        self._state = CLOSED
        self.transport.bufferSize = self._buffer_size
        if self._request.producer is self:
            with contextlib.suppress(Exception):  # the connection went meanwhile
                self._request.unregisterProducer()

    @property
    def held(self) -> bool:
        """Whether Twisted may hold bytes of this connection."""
        return self._held or self._state is not OPEN

    # IPushProducer: Twisted calls these.

    def pauseProducing(self) -> None:
        self._held = True

    def resumeProducing(self) -> None:
        self._held = False

    def stopProducing(self) -> None:
        self._state = CLOSED


def daphne_request(send: Any, depth: int = 0) -> Any:
    """The request daphne serves behind ``send``, through Channels' wrappers:
    daphne hands applications ``functools.partial(server.handle_reply, request)``,
    and Channels' session middleware keeps what it wraps as ``real_send``."""
    if depth > 8:
        return None
    if isinstance(send, functools.partial) and send.args:
        return send.args[0]
    owner = getattr(send, "__self__", None)
    inner = getattr(owner, "real_send", None)
    return None if inner is None else daphne_request(inner, depth + 1)
