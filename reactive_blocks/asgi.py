"""``get_asgi_application()``: the project's whole ASGI application, in one line.

In ``asgi.py``::

    from reactive_blocks.asgi import get_asgi_application

    application = get_asgi_application()

It is Django's application with the streams of live pages (and the
``stream_path()`` routes of ``REACTIVE_BLOCKS["URLCONF"]``, if set) served in
front, through Channels' session and auth middleware, and the one connection a
browser opens for all of them (``STREAMS_PATH``). Each request to Django
carries its tab's origin and the bus position it began at, and a response that
replaces or deletes the session cookie ends the old session's streams (what
``ReactiveMiddleware`` does, with no middleware to add); with ``DEBUG`` on the
static files are served too, as ``runserver`` would.

Nothing here touches settings until ``get_asgi_application()`` is called: the
import may come before ``DJANGO_SETTINGS_MODULE`` is set.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

__all__ = ["PageRequests", "get_asgi_application"]

PAGE_METHODS = frozenset({"GET", "HEAD"})


def get_asgi_application() -> Any:
    """Django, the streams, sessions and auth: all that ``asgi.py`` needs."""
    from django.core.asgi import get_asgi_application as django_application

    django_app: Any = django_application()  # sets Django up first

    import re

    from channels.auth import AuthMiddlewareStack
    from channels.routing import ProtocolTypeRouter, URLRouter
    from django.apps import apps
    from django.conf import settings
    from django.urls import URLPattern, re_path

    from reactive_blocks.conf import conf
    from reactive_blocks.pages.consumer import PageStreamConsumer
    from reactive_blocks.streams.routing import not_found
    from reactive_blocks.streams.shared import SharedStream

    http: Any = PageRequests(django_app)
    if settings.DEBUG and apps.is_installed("django.contrib.staticfiles"):
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

        http = ASGIStaticFilesHandler(http)
    # Django's re_path() is typed for views; Channels routes ASGI apps through it.
    page_stream: Any = PageStreamConsumer.as_asgi()
    routes: list[Any] = [
        re_path(rf"^{re.escape(conf.PAGE_STREAM_PATH.lstrip('/'))}$", page_stream)
    ]
    if conf.URLCONF is not None:
        from importlib import import_module

        routes += list(getattr(import_module(conf.URLCONF), "urlpatterns", []))
    # One connection carries all of a browser's streams (streams/shared.py); it
    # reaches each through the same routes, with the session and user it has.
    missing: Any = not_found
    shared: Any = SharedStream(URLRouter([*routes, re_path(r"", missing)]))
    routes.append(re_path(rf"^{re.escape(conf.STREAMS_PATH.lstrip('/'))}$", shared))
    # Streams get the session and user from Channels; Django's own requests get
    # them from Django's middleware, once.
    streams: list[Any] = [
        URLPattern(r.pattern, AuthMiddlewareStack(r.callback), r.default_args, r.name)
        for r in routes
    ]
    router = URLRouter([*streams, re_path(r"", http)])
    application = ProtocolTypeRouter({"http": router})
    # What the checks look for: the streams of live pages are served here.
    vars(application)["reactive_blocks_pages"] = True
    return application


class PageRequests:
    """Runs each request to Django as its tab (origin) and at the bus position it
    began at, so that ``{% reactive_connect %}`` and tracked saves know them."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.application(scope, receive, send)
            return
        from reactive_blocks.origin import HEADER, origin, position, verify_origin
        from reactive_blocks.runtime import get_bus

        headers = dict(scope.get("headers") or [])
        claimed = headers.get(HEADER.lower().encode(), b"").decode("latin-1")
        session_key = _session_key(headers.get(b"cookie", b""))
        tab = verify_origin(claimed, session_key) if claimed else None
        at = (
            await get_bus().aposition() if scope.get("method") in PAGE_METHODS else None
        )
        if session_key:
            send = _watching_session(send, session_key)
        with origin(tab), position(at):
            await self.application(scope, receive, send)


def _watching_session(send: Any, session_key: str) -> Any:
    """``send``, ending the streams of ``session_key`` if the response replaces or
    deletes its cookie (a flushed session, a new key), as ReactiveMiddleware does."""
    from django.conf import settings

    from reactive_blocks.streams.sessions import end_session_streams

    prefix = f"{settings.SESSION_COOKIE_NAME}=".encode()

    async def watched(message: Any) -> None:
        if message.get("type") == "http.response.start":
            for name, value in message.get("headers", []):
                if name.lower() == b"set-cookie" and value.startswith(prefix):
                    given = value[len(prefix) :].split(b";", 1)[0].strip(b'"')
                    if given.decode("latin-1") != session_key:
                        end_session_streams(session_key)
        await send(message)

    return watched


def _session_key(cookie_header: bytes) -> str | None:
    from django.conf import settings

    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(cookie_header.decode("latin-1"))
    except Exception:
        return None
    morsel = cookies.get(settings.SESSION_COOKIE_NAME)
    return morsel.value if morsel is not None else None
