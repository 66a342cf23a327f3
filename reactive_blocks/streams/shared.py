"""One connection for every stream of a browser tab, or of all its tabs.

A page may have several live parts (its own blocks, a document's, presence) and a
browser may show it in many tabs, while HTTP/1.1 gives a host six connections: a
stream each would freeze the seventh. ``reactive.js`` therefore opens one POST to
``STREAMS_PATH`` listing the signed stream URLs it wants, each with the id of the
last event it got. Each is served by its own consumer exactly as a GET to its URL
would be (token checked, ``has_permission()`` asked, limits counted, on its own),
and their messages are written into this one response:

* ``event: reactive-channel`` / ``data: <n>`` comes before each message of the
  ``n``-th stream of the request (counting from 0): what follows is that stream's,
  unchanged, up to the next such event;
* ``event: reactive-refused`` / ``data: <n> <status> <retry-after seconds>``:
  the ``n``-th stream did not open (403, 404: for good; 429, 5xx: try again);
* ``: ping`` comments every ``HEARTBEAT_SECONDS``; the response ends when every
  stream of it has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from reactive_blocks.conf import conf
from reactive_blocks.metrics import get_metrics
from reactive_blocks.streams.consumer import CHANNEL_SCOPE_KEY, STREAM_HEADERS
from reactive_blocks.streams.engine import PING
from reactive_blocks.streams.hubs import get_hubs
from reactive_blocks.streams.outlet import Outlet
from reactive_blocks.streams.sse import encode_event
from reactive_blocks.streams.throttle import address_key

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

__all__ = ["CHANNEL_SCOPE_KEY", "MAX_BODY_BYTES", "MAX_STREAMS", "SharedStream"]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024  # 64 streams of long signed URLs fit with room to spare
MAX_STREAMS = 64
MAX_LAST_EVENT_ID = 64
# Request headers that describe the POST, not the stream a channel opens.
POST_HEADERS = frozenset(
    {b"content-type", b"content-length", b"last-event-id", b"accept"}
)
STOP_WAITING_SECONDS = 5.0


class BadRequest(ValueError):
    """What is wrong with a request's list of streams, said to its client."""


class SharedStream:
    """The ASGI application at ``STREAMS_PATH``: ``streams`` serves each stream
    URL (the page streams and ``stream_path()`` routes, as a GET would reach
    them)."""

    def __init__(self, streams: ASGIApp) -> None:
        self.streams = streams

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("method") != "POST":
            await _answer(
                send,
                405,
                "Only POST opens streams here.",
                [(b"allow", b"POST")],
                why="method",
            )
            return
        refusal = _foreign(dict(scope.get("headers") or []))
        if refusal:
            await _answer(send, 403, refusal, why="cross_site")
            return
        try:
            body = await _read_body(receive)
            if body is None:
                return  # the client left before it finished asking
            wanted = parse_streams(body)
        except BadRequest as exc:
            status = 400 if "too large" not in str(exc) else 413
            await _answer(send, status, str(exc), why="bad_request")
            return
        # Moving open streams to a new connection is free (consumer.py): opening
        # the connection is what counts, on a bucket of its own per address
        # (its streams are counted, each on its own, when they are new).
        address = address_key(scope)
        wait = get_hubs().throttle([(f"shared:{address}", 10)]) if address else 0
        if wait:
            retry = [(b"retry-after", str(wait).encode())]
            await _answer(
                send,
                429,
                "Too many connections opened; try again later.",
                retry,
                why="throttled",
            )
            return
        await Connection(self.streams, scope, send).serve(wanted, receive)


class Connection:
    """One shared response and the streams written into it."""

    def __init__(self, streams: ASGIApp, scope: Any, send: Any) -> None:
        self.streams, self.scope = streams, scope
        self.real_send = send  # named so: Backlog finds the transport through it
        self.gone = asyncio.Event()  # the client left, or the response is over
        self.finished = asyncio.Event()  # the client left, or every stream ended
        self.left = False  # the client disconnected
        self.open_channels = 0
        self.opened: set[str] = set()  # connection ids of its streams (consumer.py)
        self._outlet: Outlet | None = None
        self._looked = False  # for the outlet, at the first fragment

    @property
    def outlet(self) -> Outlet | None:
        """The response's socket, which its streams' fragments are written to."""
        if not self._looked:
            self._looked = True
            try:
                self._outlet = Outlet.of(self.real_send)
            except Exception:
                logger.debug("Could not find a shared connection.", exc_info=True)
        return self._outlet

    async def serve(self, wanted: list[tuple[str, str | None]], receive: Any) -> None:
        await self.real_send(
            {"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS}
        )
        self.open_channels = len(wanted)
        tasks = [
            asyncio.create_task(Channel(self, number).run(url, last))
            for number, (url, last) in enumerate(wanted)
        ]
        watcher = asyncio.create_task(self._watch(receive))
        try:
            await self._heartbeat()
        finally:
            self.gone.set()
            watcher.cancel()
            if self._outlet is not None:
                # Before the channels stop: what they still send goes through
                # daphne, and the last chunk after it.
                self._outlet.close()
            _, pending = await asyncio.wait(tasks, timeout=STOP_WAITING_SECONDS)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if not self.left:
            with contextlib.suppress(Exception):
                await self.real_send(
                    {"type": "http.response.body", "body": b"", "more_body": False}
                )

    async def _watch(self, receive: Any) -> None:
        while (await receive()).get("type") != "http.disconnect":
            pass
        self.left = True
        self.finished.set()

    async def _heartbeat(self) -> None:
        """Ping until the client goes or every stream has ended."""
        while True:
            try:
                await asyncio.wait_for(self.finished.wait(), conf.HEARTBEAT_SECONDS)
                return
            except TimeoutError:
                try:
                    await self.real_send(PING)
                except Exception:
                    return

    async def write(self, body: bytes) -> None:
        await self.real_send(
            {"type": "http.response.body", "body": body, "more_body": True}
        )

    def channel_ended(self) -> None:
        self.open_channels -= 1
        if self.open_channels <= 0:
            self.finished.set()


class Channel:
    """One stream served into a shared response: its consumer's ``send`` and
    ``receive``."""

    def __init__(self, connection: Connection, number: int) -> None:
        self.connection = connection
        self.number = number
        self.marker = encode_event(str(number), event="reactive-channel")
        self.status = 0
        self.retry_after = b"0"
        self.done = False
        self._asked = False

    @property
    def outlet(self) -> Outlet | None:
        # The hub writes this stream's fragments, after the marker, straight
        # into the shared response (streams/backlog.py).
        return self.connection.outlet

    @property
    def real_send(self) -> Any:
        # Backlog follows real_send to the connection's transport: what this
        # channel leaves unread is what the shared response leaves unread.
        return self.connection.real_send

    async def run(self, url: str, last: str | None) -> None:
        try:
            await self.connection.streams(
                channel_scope(self.connection.scope, url, last, self.connection.opened),
                self.receive,
                self.send,
            )
        except Exception:
            logger.exception("A stream served in a shared connection failed.")
            if not self.status:
                self.status = 500
        finally:
            if not self.done:
                await self._end()

    async def receive(self) -> dict[str, Any]:
        if not self._asked:
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.connection.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if self.done:
            return
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            for name, value in message.get("headers", []):
                if name.lower() == b"retry-after" and value.isdigit():
                    self.retry_after = value
            return
        more = bool(message.get("more_body", False))
        if self.status == 200:
            body = message.get("body", b"")
            # Pings are the shared response's own.
            if body and body != PING["body"]:
                await self.connection.write(self.marker + body)
        if not more:
            await self._end()

    async def _end(self) -> None:
        self.done = True
        if self.status != 200 and not self.connection.gone.is_set():
            data = f"{self.number} {self.status or 500} {self.retry_after.decode()}"
            with contextlib.suppress(Exception):
                await self.connection.write(
                    encode_event(data, event="reactive-refused")
                )
        self.connection.channel_ended()


def parse_streams(body: bytes) -> list[tuple[str, str | None]]:
    """The (URL, last event id) pairs a request asks for, or ``BadRequest``."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise BadRequest(f"The request body is not JSON: {exc}.") from exc
    streams = data.get("streams") if isinstance(data, dict) else None
    if not isinstance(streams, list) or not streams:
        raise BadRequest(
            'The request body must be {"streams": [{"url": ..., "last": ...}, ...]} '
            "with at least one stream."
        )
    if len(streams) > MAX_STREAMS:
        raise BadRequest(
            f"At most {MAX_STREAMS} streams share a connection; {len(streams)} asked."
        )
    wanted = []
    for number, item in enumerate(streams):
        url = item.get("url") if isinstance(item, dict) else None
        last = item.get("last") if isinstance(item, dict) else None
        if not isinstance(url, str) or not url.startswith("/") or url.startswith("//"):
            raise BadRequest(
                f"Stream {number} needs a 'url' that is a path of this site, "
                f"got {url!r}."
            )
        if last is not None and not (
            isinstance(last, str)
            and len(last) <= MAX_LAST_EVENT_ID
            and last.isascii()
            and last.isprintable()
        ):
            raise BadRequest(
                f"Stream {number} has a 'last' that is not an event id: {last!r}."
            )
        wanted.append((url, last or None))
    return wanted


def channel_scope(
    scope: Any, url: str, last: str | None, opened: set[str]
) -> dict[str, Any]:
    """The scope of a GET to ``url`` by the client of ``scope``: its session, user,
    cookies and address, and ``last`` as its ``Last-Event-ID``."""
    parts = urlsplit(url)
    headers = [
        (name, value)
        for name, value in scope.get("headers", [])
        if name.lower() not in POST_HEADERS
    ]
    headers.append((b"accept", b"text/event-stream"))
    if last is not None:
        headers.append((b"last-event-id", last.encode("ascii")))
    routed = {"url_route", "path_remaining", "route"}
    channel = {key: value for key, value in scope.items() if key not in routed}
    channel.update(
        method="GET",
        path=unquote(parts.path),
        raw_path=parts.path.encode("ascii", "replace"),
        query_string=parts.query.encode("ascii", "replace"),
        headers=headers,
    )
    channel[CHANNEL_SCOPE_KEY] = opened
    return channel


def _foreign(headers: dict[bytes, bytes]) -> str | None:
    """Why a request is refused as not coming from the site's own pages: the
    body must be JSON (a form posted from another site cannot be, without a
    preflight this server never answers), and a browser that says where the
    request comes from must say it comes from here."""
    kind = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
    if kind != b"application/json":
        return (
            "Streams are asked for with a JSON body (Content-Type: application/json)."
        )
    site = headers.get(b"sec-fetch-site", b"same-origin")
    if site not in (b"same-origin", b"none"):
        return "Streams are opened by the site's own pages only."
    return None


async def _read_body(receive: Any) -> bytes | None:
    body = b""
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            return None
        body += bytes(message.get("body", b""))
        if len(body) > MAX_BODY_BYTES:
            raise BadRequest(
                f"The request body is too large: streams are asked for in at most "
                f"{MAX_BODY_BYTES} bytes."
            )
        if not message.get("more_body", False):
            return body


async def _answer(
    send: Any,
    status: int,
    reason: str,
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    why: str,
) -> None:
    """Refuse a shared connection; ``why`` labels it in the metrics."""
    get_metrics().connections_rejected.labels(reason=why).inc()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": reason.encode()})
