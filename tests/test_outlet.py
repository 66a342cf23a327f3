"""Fragments written straight to a stream's socket, on real Twisted connections
(the test plays the reactor), and under a real daphne."""

from __future__ import annotations

import asyncio
import select
import socket
from urllib.parse import urlsplit

import pytest
from twisted.internet import main, tcp

from reactive_blocks.streams.backlog import Backlog
from reactive_blocks.streams.outlet import Outlet
from tests.live_project import Live, live_project
from tests.twisted_connection import Connection, chunks

FRAME = b"event: title\ndata: <h1>One</h1>\n\n"


class Producer:
    """Someone else's push producer."""

    def pauseProducing(self) -> None: ...
    def resumeProducing(self) -> None: ...
    def stopProducing(self) -> None: ...


@pytest.fixture
def connection():
    connection = Connection()
    yield connection
    connection.close()


def streaming(connection: Connection, version: str = "HTTP/1.1") -> tuple:
    """A response whose outlet wrote one frame, which Twisted then sent: from
    here on its fragments go straight to the socket."""
    request = connection.request(version)
    outlet = Outlet.of(connection.send_of(request))
    assert outlet is not None
    assert outlet.write(FRAME)
    connection.flush()
    assert not outlet.held
    return request, outlet


def test_fragments_go_through_twisted_until_it_holds_nothing_then_to_the_socket(
    connection,
):
    request = connection.request()
    outlet = Outlet.of(connection.send_of(request))
    assert outlet is not None
    # Twisted holds the headers: the first fragment goes after them, through it.
    assert outlet.write(b"first\n\n")
    assert outlet.held
    connection.flush()  # the reactor writes; Twisted says it holds nothing
    assert not outlet.held
    assert connection.reactor.writers == set()
    for number in range(3):
        assert outlet.write(FRAME + b"%d" % number)
    # Straight to the socket: nothing waits for the event loop.
    assert connection.reactor.writers == set()
    head, body = chunks(connection.read())
    assert head.startswith(b"HTTP/1.1 200")
    assert b"chunked" in head.lower()
    assert body == [b"retry: 1000\n\n", b"first\n\n"] + [
        FRAME + b"%d" % number for number in range(3)
    ]


def test_what_the_socket_does_not_take_waits_in_twisted_in_order():
    connection = Connection(receive_buffer=4096)
    try:
        request = connection.request()
        send = connection.send_of(request)
        outlet, backlog = Outlet.of(send), Backlog(send)
        assert outlet is not None
        outlet.write(b"first\n\n")
        connection.flush()
        sent = [b"%05d" % number + b"x" * 20_000 for number in range(200)]
        for fragment in sent:
            assert outlet.write(fragment)
        # The client reads nothing: the kernel took what it could, Twisted the rest.
        assert outlet.held
        assert Backlog(send).pending() > 1_000_000
        assert backlog.known
        _, body = chunks(connection.read())
        assert body == [b"retry: 1000\n\n", b"first\n\n", *sent]
        assert not outlet.held  # once Twisted wrote everything, straight again
    finally:
        connection.close()


def test_a_closed_outlet_gives_the_connection_back_as_it_was(connection):
    request, outlet = streaming(connection)
    outlet.write(FRAME)
    assert connection.transport.bufferSize == 0
    outlet.close()
    assert connection.transport.bufferSize == tcp.Server.bufferSize == 65536
    assert request.producer is None
    assert not outlet.write(FRAME)  # it goes as a message, the ordinary way
    request.finish()
    _, body = chunks(connection.read())
    assert body == [b"retry: 1000\n\n", FRAME, FRAME, b""]  # b"": the last chunk
    # The connection stays open for the next request, which may stream too.
    connection.received = b""
    following = connection.request()
    assert Outlet.of(connection.send_of(following)).write(FRAME)  # type: ignore[union-attr]


def readable(connection: Connection) -> None:
    """Wait until the server's socket has bytes to read."""
    ready, _, _ = select.select([connection.transport.socket], [], [], 5)
    assert ready, "the client's bytes did not arrive"


def test_a_client_sending_on_an_open_outlet_reads_as_gone(connection):
    """``bufferSize`` is Twisted's read size too: while the outlet is open,
    anything the client sends ends the connection, as a close would."""
    streaming(connection)
    connection.client.sendall(b"GET /next HTTP/1.1\r\nHost: here\r\n\r\n")
    readable(connection)
    assert connection.transport.doRead() is main.CONNECTION_DONE


def test_a_closed_outlet_reads_the_connection_as_twisted_does(connection):
    request, outlet = streaming(connection)
    outlet.close()
    connection.client.sendall(b"GET /next HTTP/1.1\r\nHost: here\r\n\r\n")
    readable(connection)
    assert connection.transport.doRead() is None
    request.finish()  # the pipelined request is answered next
    assert [r.uri for r in connection.channel.arrived] == [b"/", b"/next"]


def test_an_outlet_never_closed_does_not_hand_its_buffer_size_on(connection):
    """A request finished under an open outlet (daphne's ``http_timeout``)
    leaves the transport's bufferSize at 0; the next outlet puts Twisted's back."""
    request, _ = streaming(connection)
    request.unregisterProducer()
    request.finish()
    assert connection.transport.bufferSize == 0
    following = connection.request()
    after = Outlet.of(connection.send_of(following))
    assert after is not None
    assert after.write(FRAME)
    after.close()
    assert connection.transport.bufferSize == tcp.Server.bufferSize


def test_a_channel_refusing_the_producer_leaves_the_request_without_it(connection):
    request = connection.request()

    connection.channel.registerProducer(Producer(), True)
    outlet = Outlet.of(connection.send_of(request))
    assert outlet is not None
    assert not outlet.write(FRAME)
    assert request.producer is None
    assert connection.transport.bufferSize == tcp.Server.bufferSize


def test_an_http_1_0_response_is_not_chunked(connection):
    _, outlet = streaming(connection, "HTTP/1.0")
    outlet.write(FRAME)
    response = connection.read()
    assert response.endswith(b"\r\n\r\nretry: 1000\n\n" + FRAME + FRAME)


def test_an_empty_fragment_writes_nothing(connection):
    """An empty chunk would end the response."""
    _, outlet = streaming(connection)
    assert outlet.write(b"")
    assert outlet.write(FRAME)
    _, body = chunks(connection.read())
    assert body == [b"retry: 1000\n\n", FRAME, FRAME]


def test_a_connection_going_away_takes_the_ordinary_path(connection):
    request = connection.request()
    outlet = Outlet.of(connection.send_of(request))
    assert outlet is not None
    outlet.write(FRAME)
    connection.transport.loseConnection()
    assert not outlet.write(FRAME)


def test_a_request_with_a_producer_of_its_own_is_left_alone(connection):
    request = connection.request()

    request.registerProducer(Producer(), True)
    outlet = Outlet.of(connection.send_of(request))
    assert outlet is not None
    assert not outlet.write(FRAME)
    assert not outlet.write(FRAME)  # and it does not ask again


def test_other_servers_get_no_outlet():
    async def send(message: object) -> None:
        pass

    assert Outlet.of(send) is None


def test_a_stream_before_its_headers_went_out_takes_the_ordinary_path(connection):
    connection.channel.dataReceived(b"GET / HTTP/1.1\r\nHost: here\r\n\r\n")
    request = connection.channel.arrived[-1]
    outlet = Outlet.of(connection.send_of(request))
    assert outlet is not None
    assert not outlet.write(FRAME)
    request.write(b"retry: 1000\n\n")
    assert outlet.write(FRAME)


# Under a real daphne ------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Live:
    with live_project(
        tmp_path_factory.mktemp("outlet"), LIVE_HEARTBEAT="0.05"
    ) as project:
        yield project


async def read_chunks(reader: asyncio.StreamReader, count: int) -> list[bytes]:
    """``count`` chunks of an HTTP/1.1 body, read strictly."""
    found = []
    for _ in range(count):
        size = await asyncio.wait_for(reader.readuntil(b"\r\n"), 10)
        data = await reader.readexactly(int(size, 16) + 2)
        assert data.endswith(b"\r\n")
        found.append(data[:-2])
    return found


async def test_daphne_streams_get_their_fragments_straight_and_well_framed(live):
    """HTTP/1.1, so chunked; heartbeats every 50 ms go the ordinary way between
    the fragments written straight: every chunk must still be whole and in order."""
    live.reset()
    url = live.page(1)[0]
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(
        f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert b"200" in head.split(b"\r\n")[0]
    assert b"chunked" in head.lower()
    live.wait_for(lambda s: s["open"] == 1)
    direct = live.stats()["renders"]["direct"]
    titles = [f"title {number}" for number in range(40)]
    seen: list[str] = []
    for title in titles:
        live.change(set={"title": title}, paths=["doc.title"])
        while title not in seen:
            for chunk in await read_chunks(reader, 1):
                if chunk.startswith(b"event: title"):
                    seen.append(chunk.split(b"data: ", 1)[1].split(b"\n")[0].decode())
    assert seen == titles
    assert live.stats()["renders"]["direct"] >= direct + 39
    writer.close()
    await writer.wait_closed()
    live.wait_for(lambda s: s["open"] == 0)


def test_a_reader_that_stops_is_still_closed_when_fragments_go_straight(live):
    """What the kernel would not take waits in Twisted, where the limit sees it."""
    live.reset()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    parts = urlsplit(live.page(1)[0])
    sock.connect((parts.hostname, parts.port))
    sock.sendall(
        f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode()
    )
    live.wait_for(lambda s: s["open"] == 1)
    number = 0
    while live.stats()["renders"]["overflowed"] == 0 and number < 200:
        live.change(set={"content": f"{number}" + "y" * 65536}, paths=["doc.content"])
        number += 1
    assert live.stats()["renders"]["overflowed"] == 1
    assert live.stats()["renders"]["direct"] > 0
    sock.close()
    live.wait_for(lambda s: s["open"] == 0)
