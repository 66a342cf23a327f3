"""A small asyncio SSE client for end-to-end tests: raw bytes and parsed events."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit

TIMEOUT = 10.0


@dataclass
class Event:
    event: str = "message"
    data: str = ""
    id: str | None = None
    comments: list[str] = field(default_factory=list)
    raw: bytes = b""


class SSEStream:
    """One GET to a stream. HTTP/1.0, so the body is not chunked."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""

    @classmethod
    async def open(
        cls,
        url: str,
        headers: dict[str, str] | None = None,
        method: str = "GET",
        body: bytes | None = None,
    ) -> SSEStream:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(
            parts.hostname, parts.port, limit=1 << 20
        )
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [
            f"{method} {target} HTTP/1.0",
            f"Host: {parts.netloc}",
            "Accept: text/event-stream",
        ]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        stream = cls(reader, writer)
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        except BaseException:
            writer.close()  # cancelled or refused halfway: nothing left open
            raise
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        stream.status = int(status_line.split()[1])
        for line in header_lines:
            if ":" in line:
                name, value = line.split(":", 1)
                stream.headers[name.strip().lower()] = value.strip()
        return stream

    async def read_rest(self) -> bytes:
        """The rest of the body, until the server closes; then close our side."""
        self.body += await asyncio.wait_for(self.reader.read(), TIMEOUT)
        await self.close()
        return self.body

    async def next_event(
        self, timeout: float = TIMEOUT, *, comments: bool = False
    ) -> Event:
        """The next event as EventSource dispatches it (one with a data line), or,
        with ``comments``, also a block of comment lines such as a ping."""
        event, data, raw = Event(), [], b""
        while True:
            line = await asyncio.wait_for(self.reader.readline(), timeout)
            if not line:
                raise EOFError("the server closed the stream")
            raw += line
            text = line.decode().rstrip("\r\n")
            if text == "":
                if data or (comments and event.comments):
                    event.data, event.raw = "\n".join(data), raw
                    return event
                event, data, raw = Event(), [], b""
                continue
            name, _, value = text.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "":
                event.comments.append(value)
            elif name == "event":
                event.event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                event.id = value

    async def events_until(self, name: str, timeout: float = TIMEOUT) -> list[Event]:
        """Events up to and including the first one called ``name``."""
        seen = []
        while True:
            event = await self.next_event(timeout)
            seen.append(event)
            if event.event == name:
                return seen

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()
