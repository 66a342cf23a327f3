"""Which browser tab caused a change: its connection id travels with its requests.

``{% reactive_connect %}`` makes htmx send the tab's connection id in a header on
every request from inside the connected element. ``get_asgi_application()`` (or ``ReactiveMiddleware``) puts it in a
context variable for the request, and changes emitted meanwhile carry it as
``origin``, so that tab's stream does not echo its own change back.

A claimed origin silences a tab, so it must not be forgeable: the header carries
the id with a signature bound to the session that rendered the page, and presence
shows a derived public id that no request can claim.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from contextvars import ContextVar
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.utils.crypto import constant_time_compare, salted_hmac

from reactive_blocks.identity import SALT, session_digest

if TYPE_CHECKING:
    from collections.abc import Iterator


__all__ = [
    "HEADER",
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


def __getattr__(name: str) -> Any:
    # reactive_blocks.origin.ReactiveMiddleware was its first home; the path is in
    # users' MIDDLEWARE settings, so it keeps working.
    if name == "ReactiveMiddleware":
        warnings.warn(
            "reactive_blocks.origin.ReactiveMiddleware has moved to "
            "reactive_blocks.middleware.ReactiveMiddleware; with "
            "reactive_blocks.asgi.get_asgi_application() no middleware is needed.",
            DeprecationWarning,
            stacklevel=2,
        )
        return import_module("reactive_blocks.middleware").ReactiveMiddleware
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
