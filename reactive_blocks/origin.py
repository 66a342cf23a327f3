"""Which browser tab caused a change: its connection id travels with its requests.

``{% reactive_connect %}`` makes htmx send the tab's connection id in a header on
every request from inside the connected element. ``ReactiveMiddleware`` puts it in a
context variable for the request, and changes emitted meanwhile carry it as
``origin``, so that tab's stream does not echo its own change back.
"""

from __future__ import annotations

import contextlib
import re
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from django.http import HttpRequest, HttpResponseBase

__all__ = ["HEADER", "ReactiveMiddleware", "current_origin", "origin"]

HEADER = "X-Reactive-Connection"
_CONNECTION_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
PAGE_METHODS = frozenset({"GET", "HEAD"})
_origin: ContextVar[str | None] = ContextVar("reactive_blocks_origin", default=None)


def current_origin() -> str | None:
    """The connection id of the tab whose request is being handled, if any."""
    return _origin.get()


@contextlib.contextmanager
def origin(connection_id: str | None) -> Iterator[None]:
    """Run a block of code as if handling a request from ``connection_id``."""
    token = _origin.set(connection_id)
    try:
        yield
    finally:
        _origin.reset(token)


class ReactiveMiddleware:
    """Reads the tab's connection id and the bus position at the request's start.

    The position (``request.reactive_position``) is what a page embeds in its
    stream URL: any change after it, even one committed while the page renders, is
    sent. Only page loads (GET, HEAD) record it: with the Redis bus it costs a
    round trip, and a form post rarely renders a page that opens a stream (one
    that does uses the position at the moment it renders).
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        from reactive_blocks.runtime import get_bus

        if request.method in PAGE_METHODS:
            request.reactive_position = get_bus().position()  # type: ignore[attr-defined]
        with self._origin(request):
            return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        from reactive_blocks.runtime import get_bus

        if request.method in PAGE_METHODS:
            request.reactive_position = await get_bus().aposition()  # type: ignore[attr-defined]
        with self._origin(request):
            response: Awaitable[HttpResponseBase] = self.get_response(request)
            return await response

    @staticmethod
    def _origin(request: HttpRequest) -> contextlib.AbstractContextManager[None]:
        value = request.headers.get(HEADER)
        return origin(value if value and _CONNECTION_ID.fullmatch(value) else None)
