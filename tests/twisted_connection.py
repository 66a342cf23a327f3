"""A real Twisted HTTP connection over a real loopback socket, without a reactor
loop: the test plays the reactor (it calls ``doWrite()`` when it would)."""

from __future__ import annotations

import functools
import socket
from typing import Any

from twisted.internet import tcp
from twisted.web import http


class Reactor:
    """What a transport asks of its reactor: the test sees who waits to write."""

    def __init__(self) -> None:
        self.writers: set[Any] = set()
        self.later: list[tuple[Any, tuple[Any, ...]]] = []

    def addReader(self, reader: Any) -> None:
        pass

    def removeReader(self, reader: Any) -> None:
        pass

    def addWriter(self, writer: Any) -> None:
        self.writers.add(writer)

    def removeWriter(self, writer: Any) -> None:
        self.writers.discard(writer)

    def callLater(self, delay: float, function: Any, *args: Any) -> None:
        self.later.append((function, args))

    def run_later(self) -> None:
        """Run what was asked to run later (an abort's connectionLost)."""
        later, self.later = self.later, []
        for function, args in later:
            function(*args)


class Request(http.Request):
    """A request that does nothing when it arrives: the test answers it."""

    def process(self) -> None:
        self.channel.arrived.append(self)


class Connection:
    """One client socket, and the server side of it as daphne would have it."""

    def __init__(self, *, receive_buffer: int | None = None) -> None:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            self.client = socket.socket()
            if receive_buffer is not None:
                self.client.setsockopt(
                    socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer
                )
            self.client.connect(listener.getsockname())
            server, address = listener.accept()
        self.reactor = Reactor()
        channel: Any = http.HTTPChannel()
        channel.requestFactory = Request
        channel.timeOut = None
        channel.callLater = self.reactor.callLater
        channel.arrived = []
        self.channel = channel
        self.transport = tcp.Server(server, channel, address, None, 1, self.reactor)
        channel.makeConnection(self.transport)
        self.received = b""

    def request(self, version: str = "HTTP/1.1") -> Any:
        """A GET arrives; its response starts with a first frame, as a stream's
        does (headers and ``retry:`` written by daphne, not yet sent)."""
        self.channel.dataReceived(f"GET / {version}\r\nHost: here\r\n\r\n".encode())
        request = self.channel.arrived[-1]
        request.setResponseCode(200)
        request.write(b"retry: 1000\n\n")
        return request

    @staticmethod
    def send_of(request: Any) -> Any:
        """The ``send`` daphne gives an application serving ``request``."""

        async def handle_reply(request: Any, message: Any) -> None:
            raise AssertionError("the test writes through the outlet")

        return functools.partial(handle_reply, request)

    def flush(self) -> None:
        """Play the reactor: write what the transport holds, as far as it goes."""
        if self.transport in self.reactor.writers:
            self.transport.doWrite()

    def read(self) -> bytes:
        """Everything sent so far (the reactor's writes included)."""
        self.client.settimeout(0.2)
        while True:
            self.flush()
            try:
                data = self.client.recv(1 << 20)
            except TimeoutError:
                if self.transport not in self.reactor.writers:
                    return self.received
                continue
            if not data:
                return self.received
            self.received += data

    def close(self) -> None:
        self.client.close()
        if not self.transport.disconnected:
            self.transport.socket.close()


def chunks(response: bytes) -> tuple[bytes, list[bytes]]:
    """The head of an HTTP/1.1 response and its body's chunks, read strictly:
    anything that is not a well-formed chunk fails the test."""
    head, _, body = response.partition(b"\r\n\r\n")
    found = []
    while body:
        size, _, rest = body.partition(b"\r\n")
        length = int(size, 16)
        assert rest[length : length + 2] == b"\r\n", body[:80]
        found.append(rest[:length])
        body = rest[length + 2 :]
    return head, found
