"""The floor under any fan-out on daphne: ``daphne bench.floor:application``.

A plain ASGI application with no Django, no database and no rendering: each
POST to /save/<pk>/ writes one ready-made SSE frame of the benchmark's size to
every open stream, with one ``send`` each and the same message object for all,
giving the event loop a turn every 25 sends as reactive_blocks' hubs do.
Whatever a fan-out costs beyond this row is its own; this row is daphne's,
Twisted's and asyncio's price for one write to one connection.
"""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

from bench.sites import stamped_title

FRAME = (
    "event: item\nid: {number}\n"
    'data: <article class="item"><h2 class="item-title">{title}</h2>'
    '<p class="item-body">An item whose title changes as the benchmark saves it; '
    "the rest of this block pads it to about three hundred bytes, the size of a "
    "typical live fragment.</p><footer></footer></article>\n\n"
)
HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]

streams: set[Any] = set()  # this process's open streams: their send callables


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path.startswith("/events/"):
        await _stream(receive, send)
    elif path.startswith("/save/"):
        await _save(receive, send)
    else:
        await _json(send, {"listeners": len(streams)})


async def _stream(receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": b"", "more_body": True})
    streams.add(send)
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    finally:
        streams.discard(send)


async def _save(receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    number = json.loads(body)["n"]
    title = stamped_title(number)
    frame = FRAME.format(number=number, title=title).encode()
    event = {"type": "http.response.body", "body": frame, "more_body": True}
    for number, stream in enumerate(list(streams), start=1):
        await stream(event)
        if number % 25 == 0:
            await asyncio.sleep(0)  # let daphne write, as reactive_blocks' hubs do
    await _json(send, {"title": title})


async def _json(send: Any, value: dict[str, Any]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(value).encode()})


gc.freeze()  # as docs/performance.md advises every site
