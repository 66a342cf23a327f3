"""``ReactiveMiddleware``: what a request tells the streams, for projects whose
``asgi.py`` is not ``reactive_blocks.asgi.get_asgi_application()`` (which does the
same with no middleware).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from reactive_blocks.origin import HEADER, PAGE_METHODS, origin, verify_origin
from reactive_blocks.runtime import get_bus
from reactive_blocks.streams.sessions import end_session_streams

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Awaitable, Callable

    from django.http import HttpRequest, HttpResponseBase

__all__ = ["ReactiveMiddleware"]


class ReactiveMiddleware:
    """Reads the tab's connection id and the bus position at the request's start,
    and ends the streams of a session that the request flushed or replaced.

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
        if request.method in PAGE_METHODS:
            _remember_position(request, get_bus().position())
        session_key = _session_key(request)
        with self._origin(request):
            response = self.get_response(request)
        _session_ended(request, session_key)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        if request.method in PAGE_METHODS:
            _remember_position(request, await get_bus().aposition())
        session_key = _session_key(request)
        with self._origin(request):
            response: Awaitable[HttpResponseBase] = self.get_response(request)
            result = await response
        _session_ended(request, session_key)
        return result

    @staticmethod
    def _origin(request: HttpRequest) -> contextlib.AbstractContextManager[None]:
        value = request.headers.get(HEADER)
        if not value:
            return origin(None)
        return origin(verify_origin(value, _session_key(request)))


def _remember_position(request: HttpRequest, position: object) -> None:
    # An attribute of our own on the request (django-stubs' HttpRequest has no
    # such field, and lint must not depend on how a stub declares it).
    vars(request)["reactive_position"] = position


def _session_key(request: HttpRequest) -> str | None:
    return getattr(getattr(request, "session", None), "session_key", None)


def _session_ended(request: HttpRequest, before: str | None) -> None:
    """A flushed session (or one given a new key) ends the streams it opened.

    Only a session the request modified counts: a cookie naming no session
    (expired, forged) also loses its key when loaded, and must not make every
    process look for its streams."""
    session = getattr(request, "session", None)
    if (
        before is not None
        and getattr(session, "modified", False)
        and _session_key(request) != before
    ):
        end_session_streams(before)
