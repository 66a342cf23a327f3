"""What the server still holds for one connection: bytes handed over, not yet written.

ASGI cannot say, and daphne's ``send`` never waits, so a browser that stops
reading would make the server keep every change sent to it. Under daphne the
``send`` an application gets is ``functools.partial(server.handle_reply, request)``
(Channels' session middleware wraps it, keeping the original as ``real_send``);
the request's Twisted transport knows how many bytes wait in its buffer, and can be
aborted: closing it politely would wait for that buffer to drain, which never
happens. Under other servers nothing is known and nothing is done; uvicorn and
hypercorn make ``send`` wait for the socket instead.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

__all__ = ["Backlog"]

logger = logging.getLogger(__name__)


class Backlog:
    """The unwritten bytes of one connection, when its server tells."""

    __slots__ = ("_transport",)

    def __init__(self, send: Any) -> None:
        self._transport = _transport_of(send)

    @property
    def known(self) -> bool:
        return self._transport is not None

    def pending(self) -> int:
        """Bytes the server holds for this connection (0 when it cannot tell)."""
        transport = self._transport
        if transport is None:
            return 0
        try:
            buffered = len(transport.dataBuffer) - transport.offset
            return int(buffered + transport._tempDataLen)
        except (AttributeError, TypeError):
            self._transport = None  # another transport: stop asking
            return 0

    def abort(self) -> None:
        """Drop the connection and what the server holds for it, at once."""
        transport = self._transport
        if transport is not None and hasattr(transport, "abortConnection"):
            try:
                transport.abortConnection()
            except Exception:
                logger.debug("Could not abort a connection.", exc_info=True)


def _transport_of(send: Any, depth: int = 0) -> Any:
    """Daphne's Twisted transport behind ``send``, through Channels' wrappers."""
    if depth > 8:
        return None
    if isinstance(send, functools.partial) and send.args:
        request = send.args[0]
        channel = getattr(request, "channel", None)
        transport = getattr(channel, "transport", None)
        return transport if hasattr(transport, "dataBuffer") else None
    owner = getattr(send, "__self__", None)
    inner = getattr(owner, "real_send", None)
    return None if inner is None else _transport_of(inner, depth + 1)
