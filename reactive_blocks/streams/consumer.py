"""The Channels consumer that serves a page's live blocks as Server-Sent Events.

Subclass it like a class-based view::

    class DocumentStream(ReactiveStreamConsumer):
        template_name = "docs/detail.html"

        def get_scope(self) -> str:
            return f"doc-{self.kwargs['pk']}"

        def get_context(self, changed_paths):
            return {"doc": Document.objects.get(pk=self.kwargs["pk"])}

The request is answered in ``http_request``; the connection then joins its page's
hub (``hub.py``), which sends it changes and heartbeats with every other connection
to that page, while the consumer keeps receiving ``http.disconnect`` and leaves the
hub as soon as the client goes.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import logging
import secrets
from collections.abc import Mapping
from functools import cached_property
from importlib import import_module
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs

from channels.auth import get_user
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.http import AsyncHttpConsumer
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIRequest
from django.utils.functional import SimpleLazyObject

from reactive_blocks.conf import conf
from reactive_blocks.events import ConnectionInfo
from reactive_blocks.identity import public_id, session_digest
from reactive_blocks.metrics import get_metrics
from reactive_blocks.streams.csrf import csrf_token
from reactive_blocks.streams.hub import Hub
from reactive_blocks.streams.hubs import get_hubs
from reactive_blocks.streams.sse import encode_retry
from reactive_blocks.streams.throttle import address_key
from reactive_blocks.streams.tokens import InvalidStreamToken, verify_stream

if TYPE_CHECKING:
    from asgiref.typing import HTTPDisconnectEvent, HTTPRequestEvent
    from django.http import HttpRequest

    from reactive_blocks.streams.engine import Client, Delivery
    from reactive_blocks.streams.hubs import Hubs

__all__ = ["ReactiveStreamConsumer"]

logger = logging.getLogger(__name__)

# What the default get_connection_context() returns.
DEFAULT_CONNECTION_NAMES = frozenset({"user", "request", "csrf_token"})
MAX_CURSOR_DIGITS = 20  # a cursor is a revision: longer is garbage, not a number
MAX_EPOCH_LENGTH = 64
# In the scope of a stream served in a shared connection: the connection ids of
# the streams that connection holds (each may be in it once).
CHANNEL_SCOPE_KEY = "reactive_blocks_channel"
STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class ReactiveStreamConsumer(AsyncHttpConsumer):
    """Streams the re-rendered blocks of ``template_name`` for one scope."""

    template_name: ClassVar[str | None] = None
    # Refuse streams whose URL was not signed by {% reactive_connect %}.
    require_signed_url: ClassVar[bool] = True
    # The SSE event that makes htmx close the stream (sse-close) for good.
    close_event: ClassVar[str] = "reactive-close"
    # Sent when the stream's lifetime ends and the browser should reconnect.
    reconnect_event: ClassVar[str] = "reactive-reconnect"
    # Sent instead of a block larger than MAX_FRAGMENT_BYTES, naming the block:
    # reactive.js fetches it with the page over a normal request.
    reload_event: ClassVar[str] = "reactive-reload"
    retry_milliseconds: ClassVar[int] = 2000
    # What a 429 (too many streams) asks the browser to wait.
    retry_after_seconds: ClassVar[int] = 10
    # Context names that make a block personal: rendered per connection.
    connection_roots: ClassVar[frozenset[str]] = frozenset({"user", "request", "perms"})

    # Hooks --------------------------------------------------------------------------

    def get_scope(self) -> str:
        """Override to name the scope this stream follows, e.g. from ``self.kwargs``."""
        raise ImproperlyConfigured(
            f"{type(self).__name__} must override get_scope() to return the scope "
            f"its page follows, e.g. f\"doc-{{self.kwargs['pk']}}\"."
        )

    def get_template_name(self) -> str:
        """Override to choose the page template per request."""
        if not self.template_name:
            raise ImproperlyConfigured(
                f"{type(self).__name__} needs a template_name (the page whose "
                f"sse-swap blocks it streams) or a get_template_name() override."
            )
        return self.template_name

    def has_permission(self) -> bool | Any:
        """Override to refuse the stream (403). May be async; sync runs in a thread."""
        return True

    def get_context(self, changed_paths: frozenset[str]) -> Mapping[str, Any] | Any:
        """Override to build what every viewer of the scope sees.

        Called once per change per process and shared by all connections, so it must
        not depend on ``self.user``: put personal data in
        ``get_connection_context()``. May be async; sync runs in a thread.
        """
        return {}

    def get_connection_context(
        self, changed_paths: frozenset[str]
    ) -> Mapping[str, Any] | Any:
        """Override to add what only this connection sees.

        The default gives ``user``, ``request`` (built from the stream's request)
        and ``csrf_token`` (from the browser's CSRF cookie, for forms in blocks).
        Blocks that read any name given here, or ``user``/``request``/``perms``,
        or use ``{% csrf_token %}``, are rendered for this connection alone. Return
        the same names every time: they are learnt from the first call, and a batch
        that touches no block reading them does not call this hook.
        """
        request = self.request
        return {
            "user": self.user,
            "request": request,
            "csrf_token": SimpleLazyObject(lambda: csrf_token(request)),
        }

    async def on_disconnect(self) -> None:
        """Override to react when the stream ends (presence updates, audits)."""

    # Properties ------------------------------------------------------------------

    @property
    def kwargs(self) -> dict[str, Any]:
        """The URL route's keyword arguments."""
        route = self.scope.get("url_route")
        return dict(route.get("kwargs", {})) if isinstance(route, Mapping) else {}

    @property
    def user(self) -> Any:
        if self._shared:
            raise _shared_only("self.user")
        return self.scope.get("user") or AnonymousUser()

    @cached_property
    def request(self) -> HttpRequest:
        """A Django request made from the stream's own (path, headers, cookies)."""
        if self._shared:
            raise _shared_only("self.request")
        scope: dict[str, Any] = dict(self.scope)
        request = ASGIRequest(scope, io.BytesIO())
        request.user = self.user
        if "session" in scope:
            request.session = scope["session"]
        return request

    # Request handling ----------------------------------------------------------

    _shared = False  # True on the instance a hub builds shared context on

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # Channels' loop would keep a task per connection waiting on receive();
        # thousands of idle streams are cheaper served by the application's own
        # task, which the hub cancels when it ends the stream on its own (lifetime,
        # access revoked) instead of waiting for a disconnect that may not come.
        self.scope = scope
        self.base_send = send
        self._client: Client | None = None
        self._task = asyncio.current_task()
        self._done = False  # the response is complete
        self._receiving = False
        self._ended_by_hub = False
        try:
            while not self._done:
                self._receiving = self._client is not None
                try:
                    message = await receive()
                finally:
                    self._receiving = False
                await self.dispatch(message)
        except StopConsumer:
            pass
        except asyncio.CancelledError:
            if not self._ended_by_hub or self._task is None:
                raise
            self._task.uncancel()
        finally:
            await self._stop()

    async def http_request(self, message: HTTPRequestEvent) -> None:
        if message.get("more_body"):
            return  # a GET has no body worth waiting for
        try:
            await self._open()
        except Exception:
            # A hook that raises must answer the client, not leave it hanging.
            logger.exception(
                "The stream %s could not be opened.", self.scope.get("path")
            )
            await self._refuse(500, "The stream could not be opened.", why="error")

    async def _open(self) -> None:
        if self.scope.get("method") != "GET":
            await self._refuse(
                405, "Only GET opens a stream.", [(b"allow", b"GET")], why="method"
            )
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            self.connection_id = self._connection_id(query)
        except InvalidStreamToken as exc:
            await self._refuse(403, str(exc), why="token")
            return
        shared: Any = self.scope.get(CHANNEL_SCOPE_KEY)
        if isinstance(shared, set):
            if self.connection_id in shared:
                await self._refuse(
                    400, "This stream is asked for twice here.", why="duplicate"
                )
                return
            shared.add(self.connection_id)
        # Before anything costly (the session's user, has_permission()): a client
        # opening streams in a loop is told to wait.
        wait = 0 if self._reopening() else get_hubs().throttle(self._openers())
        if wait:
            await self._refuse(
                429,
                "Too many streams opened; try again later.",
                [(b"retry-after", str(wait).encode())],
                why="throttled",
            )
            return
        self.scope_name = self.get_scope()
        if not await self._call(self.has_permission):
            await self._refuse(403, "Permission denied.", why="permission")
            return
        if "probe" in query:
            # reactive.js asks whether a failed stream would be refused: answer
            # without opening one (which would replace the page's own).
            await self._refuse(204, "")
            return
        session = self.scope.get("session")
        self.connection = ConnectionInfo(
            # Presence shows a public id: the connection id itself would let
            # whoever reads presence claim this tab's changes as their own.
            public_id(self.connection_id),
            self._user_id(),
            session=session_digest(getattr(session, "session_key", None)) or None,
        )
        hubs = get_hubs()
        admitted = hubs.admit(
            self,
            self.base_send,
            self._hub_ended,
            cursor=self._cursor(query),
            # A page numbered by another bus history (a restarted process, Redis
            # that lost its data) cannot say what it missed: resend everything.
            epoch=query.get("epoch", [""])[0][:MAX_EPOCH_LENGTH] or None,
            visitor=self._visitor(),
        )
        if isinstance(admitted, str):
            retry = str(self.retry_after_seconds).encode()
            await self._refuse(429, admitted, [(b"retry-after", retry)], why="limit")
            return
        self._client = admitted  # from here on, _stop() releases its place
        previous = hubs.stream_of(self.connection_id)
        await self.send_headers(status=200, headers=STREAM_HEADERS)
        await self.send_body(encode_retry(self.retry_milliseconds), more_body=True)
        hubs.join(admitted)
        # One stream per token at a time: the one it replaces ends, after this one
        # joined, so that their hub (and what it knows of the page) goes on.
        await hubs.retire(previous)

    async def http_disconnect(self, message: HTTPDisconnectEvent) -> None:
        await self._stop()
        await super().http_disconnect(message)

    # Internals -----------------------------------------------------------------

    async def _refuse(
        self,
        status: int,
        reason: str,
        headers: list[tuple[bytes, bytes]] | None = None,
        *,
        why: str | None = None,
    ) -> None:
        """Answer without a stream; ``why`` labels the refusal in the metrics (a
        probe's answer is none)."""
        if why is not None:
            get_metrics().connections_rejected.labels(reason=why).inc()
        await self.send_headers(
            status=status,
            headers=[(b"content-type", b"text/plain; charset=utf-8"), *(headers or [])],
        )
        await self.send_body(reason.encode())
        self._done = True

    def _hub_ended(self) -> None:
        """The hub has ended the response: stop waiting for the client."""
        self._done = True
        if self._receiving and self._task is not None:
            self._ended_by_hub = True
            self._task.cancel()

    def _connection_id(self, query: dict[str, list[str]]) -> str:
        if not self.require_signed_url:
            given = query.get("connection", [""])[0]
            return given or secrets.token_urlsafe(12)
        session = self.scope.get("session")
        token = verify_stream(
            query.get("token", [""])[0],
            path=self.scope.get("path", ""),
            session_key=getattr(session, "session_key", None),
            max_age=conf.TOKEN_MAX_AGE_SECONDS,
        )
        return token.connection_id

    def _cursor(self, query: dict[str, list[str]]) -> int | None:
        # EventSource sends Last-Event-ID when it reconnects by itself; htmx's
        # extension forgets it when it rebuilds the source, so reactive.js keeps it
        # in the URL; a fresh page sends the bus position it was rendered at.
        headers = dict(self.scope.get("headers", []))
        candidates = [
            headers.get(b"last-event-id", b"").decode("latin-1"),
            query.get("last_event_id", [""])[0],
            query.get("since", [""])[0],
        ]
        for value in candidates:
            value = value.strip()
            if not value:
                continue
            if len(value) <= MAX_CURSOR_DIGITS and value.isascii() and value.isdigit():
                return int(value)
            return -1  # unusable: older than anything, so the page resyncs
        return None

    def _reopening(self) -> bool:
        """Whether this open only moves a stream that is open here to a new
        shared connection (a tab opened or closed beside it): opening that
        connection was counted instead, and it holds each stream once."""
        moved = CHANNEL_SCOPE_KEY in self.scope
        return moved and get_hubs().is_open(self.connection_id)

    def _connection_names(self) -> frozenset[str] | None:
        """The names get_connection_context() gives, when known without calling it."""
        hook = type(self).get_connection_context
        if hook is ReactiveStreamConsumer.get_connection_context:
            return DEFAULT_CONNECTION_NAMES
        return None

    def _visitor(self) -> str | None:
        """Whose streams this one counts among: the user's, an anonymous session's,
        or else the client address's."""
        user_id = self._user_id()
        if user_id is not None:
            return f"user:{user_id}"
        session_key = getattr(self.scope.get("session"), "session_key", None)
        if session_key:
            return f"session:{session_digest(session_key)}"
        return self._address()

    def _openers(self) -> list[tuple[str, int]]:
        """Whose open rate this open counts against, each with its scale: the
        session the signed token was made for (a forged cookie cannot pass the
        token), and the client address, shared ten times wider by its sessions.
        With no address known (a unix socket without proxy headers), nothing is
        counted for it rather than everyone together."""
        session_key = getattr(self.scope.get("session"), "session_key", None)
        address = self._address()
        if session_key and self.require_signed_url:
            openers = [(f"session:{session_digest(session_key)}", 1)]
            return openers + ([(address, 10)] if address else [])
        return [(address, 1)] if address else []

    def _address(self) -> str | None:
        return address_key(self.scope)

    def _user_id(self) -> str | None:
        user = self.user
        if getattr(user, "is_authenticated", False):
            return str(user.pk)
        return None

    async def _call(self, hook: Any, *args: Any) -> Any:
        if inspect.iscoroutinefunction(hook):
            return await hook(*args)
        result = await database_sync_to_async(hook)(*args)
        if inspect.isawaitable(result):
            result = await result
        return result

    def hub_key(self) -> tuple[object, ...]:
        """What the connections served together share: the page and its scope."""
        return (
            type(self),
            self.get_template_name(),
            self.scope_name,
            repr(sorted(self.kwargs.items())),
        )

    def make_hub(self, hubs: Hubs, key: tuple[object, ...]) -> Delivery:
        """The hub that serves this connection and the others with its key."""
        return Hub(hubs, key, self.shared(), self.get_template_name())

    def shared(self) -> ReactiveStreamConsumer:
        """A consumer of the same class and route, for hooks that serve every viewer
        of the scope (``get_context()``): it belongs to no connection, so it has
        no user, request, session or query string to leak into shared renders."""
        consumer = type(self)()
        consumer._shared = True
        # Set through vars(): channels' stubs type scope as their own TypedDict.
        vars(consumer)["scope"] = SharedScope(
            {
                "type": "http",
                "method": "GET",
                "path": self.scope.get("path", ""),
                "url_route": self.scope.get("url_route", {}),
            }
        )
        consumer.scope_name = self.scope_name
        return consumer

    async def _connection_context(
        self, changed_paths: frozenset[str]
    ) -> Mapping[str, Any]:
        context = await self._call(self.get_connection_context, changed_paths)
        if not isinstance(context, Mapping):
            raise TypeError(
                f"get_connection_context() must return a mapping, got "
                f"{type(context).__name__}."
            )
        return context

    @classmethod
    def checks_access(cls) -> bool:
        """Whether ``has_permission()`` is overridden (the default lets anyone in)."""
        return cls.has_permission is not ReactiveStreamConsumer.has_permission

    async def _access(self, *, reload: bool = True) -> str:
        """Whether the stream may go on (at the end of its lifetime, or when the app
        asks with ``bus.recheck()``), for its user as they are now: "keep", or end
        with "close" (refused) or "reconnect" (the check failed, or the session now
        has another user: a new stream asks again, as that user)."""
        try:
            if reload:
                await self._reload_user()
            allowed = bool(await self._call(self.has_permission))
        except Exception:
            logger.exception(
                "Checking access of an open stream of %r failed.", self.scope_name
            )
            return "reconnect"
        if not allowed:
            return "close"
        return "keep" if self._user_id() == self.connection.user_id else "reconnect"

    async def _reload_user(self) -> None:
        """Read the session and its user again: the ones captured at connect may
        have logged out, lost a permission or been deactivated since."""
        session = self.scope.get("session")
        if session is None or "user" not in self.scope:
            return
        engine = import_module(settings.SESSION_ENGINE)
        scope: Any = self.scope
        scope["session"] = engine.SessionStore(getattr(session, "session_key", None))
        scope["user"] = await get_user(scope)
        self.__dict__.pop("request", None)  # built from the old user

    async def _stop(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        get_hubs().leave(client)
        try:
            await self._call(self.on_disconnect)
        except Exception:
            logger.exception("on_disconnect() raised for scope %r.", self.scope_name)


class SharedScope(dict[str, Any]):
    """The ASGI scope of a shared consumer: what identifies the connection is
    not there, and asking for it says why."""

    def __missing__(self, key: str) -> Any:
        raise _shared_only(f"self.scope[{key!r}]")


def _shared_only(what: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(
        f"{what} is not available in get_context(): it is built once and shared by "
        f"every viewer of the scope. Put what depends on the viewer in "
        f"get_connection_context(); self.kwargs (the signed route's arguments) is "
        f"available in both."
    )
