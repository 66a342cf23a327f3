"""One stream's way to its socket: what the server still holds for it, and
fragments written straight to it.

ASGI cannot say how much a server holds, and daphne's ``send`` never waits, so a
browser that stops reading would make the server keep every change sent to it.
Under daphne the request's Twisted transport knows how many bytes wait in its
buffer, and can be aborted: closing it politely would wait for that buffer to
drain, which never happens. The same request's socket takes fragments directly
(streams/outlet.py). Under other servers nothing is known and nothing is done;
uvicorn and hypercorn make ``send`` wait for the socket instead.

A stream served in a shared connection (streams/shared.py) writes into that
connection's response, after its channel's marker.
"""

from __future__ import annotations

import logging
from typing import Any

from reactive_blocks.streams.outlet import Outlet

__all__ = ["Backlog"]

logger = logging.getLogger(__name__)


class Backlog:
    """The unwritten bytes of one stream, and its direct way to the socket, when
    its server tells."""

    __slots__ = ("_outlet", "_owned", "_prefix")

    def __init__(self, send: Any) -> None:
        self._outlet, self._prefix, self._owned = _outlet_of(send)

    @property
    def known(self) -> bool:
        return self._outlet is not None

    def pending(self) -> int:
        """Bytes the server holds for this connection (0 when it cannot tell)."""
        outlet = self._outlet
        if outlet is None or not outlet.held:
            return 0
        transport = outlet.transport
        try:
            buffered = len(transport.dataBuffer) - transport.offset
            return int(buffered + transport._tempDataLen)
        except (AttributeError, TypeError):
            self._outlet = None  # another transport: stop asking
            return 0

    def write(self, body: bytes) -> bool:
        """Write a fragment straight to the socket, after everything sent before;
        False when that cannot be done (it goes as an ASGI message then)."""
        outlet = self._outlet
        if outlet is None:
            return False
        return outlet.write(self._prefix + body if self._prefix else body)

    def close(self) -> None:
        """The stream ends: its own response goes back to the server's hands."""
        if self._owned and self._outlet is not None:
            self._outlet.close()

    def abort(self) -> None:
        """Drop the connection and what the server holds for it, at once."""
        outlet = self._outlet
        if outlet is not None and hasattr(outlet.transport, "abortConnection"):
            try:
                outlet.transport.abortConnection()
            except Exception:
                logger.debug("Could not abort a connection.", exc_info=True)


def _outlet_of(send: Any) -> tuple[Outlet | None, bytes, bool]:
    """The outlet behind ``send``, the prefix its fragments take, and whether the
    stream owns it (a shared connection owns its own)."""
    channel = _shared_channel(send)
    if channel is not None:
        return channel.outlet, channel.marker, False
    try:
        return Outlet.of(send), b"", True
    except Exception:
        logger.debug("Could not find the connection of a stream.", exc_info=True)
        return None, b"", False


def _shared_channel(send: Any, depth: int = 0) -> Any:
    """The shared connection's channel ``send`` writes into, if any: an owner on
    the way to the server that has an ``outlet`` and a ``marker``."""
    if depth > 8:
        return None
    owner = getattr(send, "__self__", None)
    if hasattr(owner, "outlet") and hasattr(owner, "marker"):
        return owner
    inner = getattr(owner, "real_send", None)
    return None if inner is None else _shared_channel(inner, depth + 1)
