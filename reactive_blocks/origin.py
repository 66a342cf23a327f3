"""Which browser tab caused a change: its connection id travels with its requests.

``{% reactive_connect %}`` makes htmx send the tab's connection id in a header on
every request from inside the connected element. ``ReactiveMiddleware`` puts it in a
context variable for the request, and changes emitted meanwhile carry it as
``origin``, so that tab's stream does not echo its own change back.

A claimed origin silences a tab, so it must not be forgeable: the header carries
the id with a signature bound to the session that rendered the page, and presence
shows a derived public id that no request can claim.
"""

from __future__ import annotations

import contextlib
import re
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.utils.crypto import constant_time_compare, salted_hmac

from reactive_blocks.identity import SALT, session_digest

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from django.http import HttpRequest, HttpResponseBase

__all__ = [
    "HEADER",
    "ReactiveMiddleware",
    "current_origin",
    "current_position",
    "origin",
    "sign_origin",
    "verify_origin",
]

HEADER = "X-Reactive-Connection"
_SIGNED_ORIGIN = re.compile(r"([A-Za-z0-9_-]{8,64})\.([0-9a-f]{32})")

PAGE_METHODS = frozenset({"GET", "HEAD"})
_origin: ContextVar[str | None] = ContextVar("reactive_blocks_origin", default=None)
# The bus position when the request began, set by get_asgi_application()'s app.
_position: ContextVar[object] = ContextVar("reactive_blocks_position", default=None)


def current_origin() -> str | None:
    """The connection id of the tab whose request is being handled, if any."""
    return _origin.get()


def current_position() -> object:
    """The bus position recorded when the request being handled began, if any."""
    return _position.get()


@contextlib.contextmanager
def position(value: object) -> Iterator[None]:
    """Run a block of code as a request that began at bus position ``value``."""
    token = _position.set(value)
    try:
        yield
    finally:
        _position.reset(token)


@contextlib.contextmanager
def origin(connection_id: str | None) -> Iterator[None]:
    """Run a block of code as if handling a request from ``connection_id``."""
    token = _origin.set(connection_id)
    try:
        yield
    finally:
        _origin.reset(token)


def sign_origin(connection_id: str, session_key: str | None) -> str:
    """The header value that lets this session's requests claim ``connection_id``."""
    return f"{connection_id}.{_signature(connection_id, session_digest(session_key))}"


def verify_origin(value: str | None, session_key: str | None) -> str | None:
    """The connection id ``value`` claims, if it was signed for this session."""
    match = _SIGNED_ORIGIN.fullmatch(value or "")
    if match is None:
        return None
    connection_id, signature = match.groups()
    # A page rendered before its visitor had a session signed it for none.
    for session in {session_digest(session_key), ""}:
        if constant_time_compare(signature, _signature(connection_id, session)):
            return connection_id
    return None


def _signature(connection_id: str, session: str) -> str:
    value = f"{connection_id}|{session}"
    return salted_hmac(SALT, value, algorithm="sha256").hexdigest()[:32]


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
        from reactive_blocks.runtime import get_bus

        if request.method in PAGE_METHODS:
            _remember_position(request, get_bus().position())
        session_key = _session_key(request)
        with self._origin(request):
            response = self.get_response(request)
        _session_ended(request, session_key)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        from reactive_blocks.runtime import get_bus

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
        from reactive_blocks.streams.sessions import end_session_streams

        end_session_streams(before)
