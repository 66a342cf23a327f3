"""Routes for streams, and the ASGI router that serves them beside Django.

In ``asgi.py``::

    application = ProtocolTypeRouter({
        "http": AuthMiddlewareStack(stream_router(get_asgi_application())),
    })

with ``REACTIVE_BLOCKS["URLCONF"]`` naming a module whose ``urlpatterns`` are
``stream_path()`` routes.
"""

from __future__ import annotations

import re
from importlib import import_module
from typing import TYPE_CHECKING, Any

from channels.routing import URLRouter
from django.core.exceptions import ImproperlyConfigured
from django.urls import URLPattern, path, re_path

from reactive_blocks.conf import conf
from reactive_blocks.streams.consumer import ReactiveStreamConsumer
from reactive_blocks.streams.shared import SharedStream

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["not_found", "stream_path", "stream_router"]


def stream_path(
    route: str, consumer: type[ReactiveStreamConsumer], name: str | None = None
) -> URLPattern:
    """A route to ``consumer``; ``name`` is what ``{% reactive_connect %}`` takes."""
    candidate: object = consumer
    if not (
        isinstance(candidate, type) and issubclass(candidate, ReactiveStreamConsumer)
    ):
        raise TypeError(
            f"stream_path() takes a ReactiveStreamConsumer subclass, got {consumer!r}."
        )
    # Django's path() is typed for views; Channels routes ASGI apps through it.
    app: Any = consumer.as_asgi()
    pattern: URLPattern = path(route, app, name=name) if name else path(route, app)
    return pattern


async def not_found(scope: Any, receive: Any, send: Any) -> None:
    """A plain 404, for requests that match no route."""
    await send(
        {
            "type": "http.response.start",
            "status": 404,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": b"Not found."})


def stream_router(
    fallback: Callable[[Any, Any, Any], Awaitable[None]] | None = None,
    urlconf: str | None = None,
) -> URLRouter:
    """Serve the stream routes of ``urlconf`` (default: the URLCONF setting) and hand
    every other request to ``fallback`` (your Django ASGI application)."""
    module_name = urlconf or conf.URLCONF
    if module_name is None:
        raise ImproperlyConfigured(
            "stream_router() needs REACTIVE_BLOCKS['URLCONF'] (or urlconf=): the module "
            "whose urlpatterns hold your stream_path() routes."
        )
    patterns: list[Any] = list(getattr(import_module(module_name), "urlpatterns", []))
    # The one connection a browser opens for all its streams reaches them here.
    missing: Any = not_found
    shared: Any = SharedStream(URLRouter([*patterns, re_path(r"", missing)]))
    shared_path = re_path(rf"^{re.escape(conf.STREAMS_PATH.lstrip('/'))}$", shared)
    catch_all: Any = fallback or not_found
    return URLRouter([*patterns, shared_path, re_path(r"", catch_all)])
