"""Reading what daphne holds for a connection, through the wrappers around
``send``, on real Twisted connections (tests/twisted_connection.py)."""

from __future__ import annotations

import pytest

from reactive_blocks.streams.backlog import Backlog
from reactive_blocks.streams.shared import Channel, Connection
from tests.twisted_connection import Connection as TwistedConnection
from tests.twisted_connection import chunks

HELD = len(b"a\r\nretry: 1000\n\n\r\n")  # the first frame, chunked


@pytest.fixture
def twisted():
    connection = TwistedConnection()
    yield connection
    connection.close()


def daphne_send(connection: TwistedConnection):
    """A response whose headers and first frame Twisted holds, and its send."""
    request = connection.request()
    return connection.send_of(request)


def held_now(connection: TwistedConnection) -> int:
    """What Twisted holds: the headers, and the first frame."""
    transport = connection.transport
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


class SessionWrapper:
    """Like Channels' InstanceSessionWrapper: keeps the server's send as real_send."""

    def __init__(self, send: object) -> None:
        self.real_send = send

    async def send(self, message: object) -> None:
        pass


def test_the_bytes_daphne_holds_are_read_from_its_transport(twisted):
    backlog = Backlog(daphne_send(twisted))
    assert backlog.known
    assert backlog.pending() == held_now(twisted) > HELD
    twisted.flush()
    assert backlog.pending() == 0
    backlog.abort()
    twisted.reactor.run_later()
    assert twisted.transport.disconnected


def test_channels_wrappers_are_looked_through(twisted):
    wrapped = SessionWrapper(SessionWrapper(daphne_send(twisted)).send).send
    assert Backlog(wrapped).pending() == held_now(twisted)


def test_another_server_tells_nothing_and_nothing_is_done():
    async def send(message: object) -> None:
        pass

    backlog = Backlog(send)
    assert not backlog.known
    assert backlog.pending() == 0
    backlog.abort()  # harmless


def test_a_transport_that_changes_shape_stops_being_asked(twisted):
    backlog = Backlog(daphne_send(twisted))
    twisted.transport.dataBuffer = None
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


def test_a_stream_in_a_shared_connection_reads_that_connections_transport(twisted):
    """What a stream leaves unread in a shared connection is what the connection
    leaves unread: its limit and its abort apply to the connection."""
    wrapped = SessionWrapper(daphne_send(twisted)).send
    channel = Channel(Connection(None, {}, wrapped), 0)  # type: ignore[arg-type]
    backlog = Backlog(channel.send)
    assert backlog.pending() == held_now(twisted)
    backlog.abort()
    twisted.reactor.run_later()
    assert twisted.transport.disconnected


def test_streams_in_a_shared_connection_write_after_their_marker(twisted):
    """Two streams of one shared response write into it straight, each frame
    after its channel's marker, through the one outlet of the response."""
    connection = Connection(None, {}, SessionWrapper(daphne_send(twisted)).send)  # type: ignore[arg-type]
    first, second = Channel(connection, 0), Channel(connection, 1)
    assert Backlog(first.send).write(b"data: a\n\n")
    twisted.flush()
    assert Backlog(second.send).write(b"data: b\n\n")
    assert Backlog(first.send).write(b"data: c\n\n")
    Backlog(first.send).close()  # a stream ending leaves the response to the others
    assert Backlog(second.send).write(b"data: d\n\n")
    _, body = chunks(twisted.read())
    assert body[1:] == [
        first.marker + b"data: a\n\n",
        second.marker + b"data: b\n\n",
        first.marker + b"data: c\n\n",
        second.marker + b"data: d\n\n",
    ]
    assert twisted.reactor.writers == set()  # the last three went straight
