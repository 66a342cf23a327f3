"""Reading what daphne holds for a connection, through the wrappers around ``send``."""

from __future__ import annotations

import functools
from types import SimpleNamespace

from reactive_blocks.streams.backlog import Backlog
from reactive_blocks.streams.shared import Channel, Connection


class Transport:
    """The attributes of Twisted's FileDescriptor that tell what waits to be written."""

    def __init__(self) -> None:
        self.dataBuffer = b"x" * 100
        self.offset = 40
        self._tempDataLen = 7
        self.aborted = 0

    def abortConnection(self) -> None:
        self.aborted += 1


async def handle_reply(request: object, message: object) -> None:
    pass


def daphne_send(transport: Transport) -> functools.partial:
    request = SimpleNamespace(channel=SimpleNamespace(transport=transport))
    return functools.partial(handle_reply, request)


class SessionWrapper:
    """Like Channels' InstanceSessionWrapper: keeps the server's send as real_send."""

    def __init__(self, send: object) -> None:
        self.real_send = send

    async def send(self, message: object) -> None:
        pass


def test_the_bytes_daphne_holds_are_read_from_its_transport():
    transport = Transport()
    backlog = Backlog(daphne_send(transport))
    assert backlog.known
    assert backlog.pending() == 60 + 7
    backlog.abort()
    assert transport.aborted == 1


def test_channels_wrappers_are_looked_through():
    transport = Transport()
    wrapped = SessionWrapper(SessionWrapper(daphne_send(transport)).send).send
    assert Backlog(wrapped).pending() == 67


def test_another_server_tells_nothing_and_nothing_is_done():
    async def send(message: object) -> None:
        pass

    backlog = Backlog(send)
    assert not backlog.known
    assert backlog.pending() == 0
    backlog.abort()  # harmless


def test_a_transport_that_changes_shape_stops_being_asked():
    transport = Transport()
    backlog = Backlog(daphne_send(transport))
    del transport.dataBuffer
    assert backlog.pending() == 0
    assert not backlog.known


def test_twisted_and_daphne_still_keep_what_backlog_reads_where_it_reads_it():
    """Backlog reads private parts of Twisted and daphne (no ASGI server says how
    much it holds): if an upgrade moves them, this fails instead of streams
    silently piling up what browsers do not read."""
    import inspect

    from daphne.server import Server
    from twisted.internet import tcp
    from twisted.internet.abstract import FileDescriptor

    # The buffer of a TCP connection: written bytes wait in these until sent.
    transport = FileDescriptor()
    transport.connected = True
    transport.startWriting = lambda: None  # no reactor here
    transport.write(b"x" * 10)
    assert len(transport.dataBuffer) - transport.offset + transport._tempDataLen == 10
    assert hasattr(tcp.Connection, "abortConnection")
    # daphne hands the application partial(server.handle_reply, protocol).
    source = inspect.getsource(Server.create_application)
    assert "partial(self.handle_reply, protocol)" in source
    # ... whose channel (Twisted's HTTPChannel) has the connection's transport.
    from daphne.http_protocol import WebRequest
    from twisted.web.http import Request

    assert issubclass(WebRequest, Request)
    assert "self.channel = channel" in inspect.getsource(Request.__init__)


def test_a_stream_in_a_shared_connection_reads_that_connections_transport():
    """What a stream leaves unread in a shared connection is what the connection
    leaves unread: its limit and its abort apply to the connection."""
    transport = Transport()
    wrapped = SessionWrapper(daphne_send(transport)).send
    channel = Channel(Connection(None, {}, wrapped), 0)  # type: ignore[arg-type]
    backlog = Backlog(channel.send)
    assert backlog.pending() == 67
    backlog.abort()
    assert transport.aborted == 1
