"""The SSE consumer end to end: a real daphne process, read with an HTTP client."""

from __future__ import annotations

import asyncio
import json
import time
from unittest import mock
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from reactive_blocks.identity import public_id
from reactive_blocks.streams.tokens import sign_stream
from tests.live_project import Live, live_project
from tests.sse_client import SSEStream

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Live:
    with live_project(tmp_path_factory.mktemp("live")) as project:
        yield project


OPEN: list[SSEStream] = []


@pytest.fixture(autouse=True)
async def _fresh_documents(live):
    live.reset()
    yield
    # A failed test must not leave its streams open for the next one.
    while OPEN:
        await OPEN.pop().close()
    live.wait_for(lambda s: s["subscribers"] == 0)


async def opened(url: str, **headers: str) -> SSEStream:
    stream = await SSEStream.open(url, headers)
    OPEN.append(stream)
    assert stream.status == 200, await stream.read_rest()
    return stream


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return parts._replace(query=urlencode(query)).geturl()


# The wire ---------------------------------------------------------------------------


async def test_a_change_arrives_as_exact_bytes_with_stream_headers(live):
    url, _, _ = live.page(1)
    stream = await opened(url)
    assert stream.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert stream.headers["cache-control"] == "no-cache"
    assert stream.headers["x-accel-buffering"] == "no"
    assert "content-encoding" not in stream.headers
    sequence = live.change(set={"content": "One & two"}, paths=["doc.content"])
    event = await stream.next_event()
    assert (
        event.raw == f"event: content\nid: {sequence}\ndata: One &amp; two\n\n".encode()
    )
    await stream.close()


async def test_multi_line_and_non_ascii_html(live):
    url, _, _ = live.page(1)
    stream = await opened(url)
    title = "Première ligne ✓\nseconde <ligne>"
    sequence = live.change(set={"title": title}, paths=["doc.title"])
    events = [await stream.next_event(), await stream.next_event()]
    assert {e.event for e in events} == {"title", "greeting"}
    title_event = next(e for e in events if e.event == "title")
    assert (
        title_event.raw
        == (
            "event: title\ndata: Première ligne ✓\ndata: seconde &lt;ligne&gt;\n\n"
        ).encode()
    )
    assert events[1].id == str(sequence)  # the batch's last fragment carries the id
    assert title_event.data == "Première ligne ✓\nseconde &lt;ligne&gt;"
    await stream.close()


# Who receives what ------------------------------------------------------------------


async def test_the_authors_tab_is_not_echoed_but_its_other_tab_is(live):
    cookie, _ = live.login("author")
    url_a, tab_a, _ = live.page(1, cookie)
    url_b, tab_b, _ = live.page(1, cookie)
    stream_a = await opened(url_a, Cookie=cookie)
    stream_b = await opened(url_b, Cookie=cookie)
    live.change(
        origin=tab_a,
        cookie=cookie,
        set={"content": "typed in A"},
        paths=["doc.content"],
    )
    assert (await stream_b.next_event()).data == "typed in A"
    # A's next event is B's change: A's own change was skipped.
    live.change(
        origin=tab_b,
        cookie=cookie,
        set={"content": "typed in B"},
        paths=["doc.content"],
    )
    assert (await stream_a.next_event()).data == "typed in B"
    await stream_a.close()
    await stream_b.close()


async def test_audience_reaches_only_the_listed_user(live):
    alice_cookie, alice_id = live.login("alice")
    bob_cookie, _ = live.login("bob")
    alice = await opened(live.page(1, alice_cookie)[0], Cookie=alice_cookie)
    bob = await opened(live.page(1, bob_cookie)[0], Cookie=bob_cookie)
    live.change(
        set={"content": "for alice"}, paths=["doc.content"], audience=[alice_id]
    )
    assert (await alice.next_event()).data == "for alice"
    live.change(set={"content": "for all"}, paths=["doc.content"])
    assert (await bob.next_event()).data == "for all"
    await alice.close()
    await bob.close()


async def test_personal_blocks_are_rendered_for_each_user(live):
    alice_cookie, _ = live.login("alice")
    alice = await opened(live.page(1, alice_cookie)[0], Cookie=alice_cookie)
    guest = await opened(live.page(1)[0])
    live.change(set={"title": "T"}, paths=["doc.title"])
    greetings = {}
    for name, stream in (("alice", alice), ("guest", guest)):
        events = {
            e.event: e.data
            for e in [await stream.next_event(), await stream.next_event()]
        }
        greetings[name] = events["greeting"]
    assert greetings == {
        "alice": "Hello alice, this is T",
        "guest": "Hello guest, this is T",
    }
    await alice.close()
    await guest.close()


# Refusals ---------------------------------------------------------------------------


async def test_denied_permission_is_403(live):
    url, _, _ = live.page(2)  # private: only signed-in users
    stream = await SSEStream.open(url)
    assert stream.status == 403
    assert await stream.read_rest() == b"Permission denied."
    assert stream.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda url: with_query(url, token=""), b"The stream URL carries no token."),
        (
            lambda url: with_query(
                url, token="forged" + parse_qs(urlsplit(url).query)["token"][0]
            ),
            b"The stream token is not valid.",
        ),
        (
            lambda url: url.replace("/live/docs/1/", "/live/docs/2/"),
            b"The stream token was made for another path.",
        ),
    ],
)
async def test_missing_forged_or_misused_token_is_403(live, tamper, reason):
    url, _, _ = live.page(1)
    stream = await SSEStream.open(tamper(url))
    assert stream.status == 403
    assert await stream.read_rest() == reason


async def test_expired_token_is_403(live):
    long_ago = time.time() - 2 * 86_400
    with mock.patch("django.core.signing.time.time", return_value=long_ago):
        token = sign_stream("/live/docs/1/", "old-connection", None)
    stream = await SSEStream.open(f"{live.url}/live/docs/1/?token={token}")
    assert stream.status == 403
    assert await stream.read_rest() == b"The stream token has expired."


async def test_token_of_another_session_is_403(live):
    cookie, _ = live.login("alice")
    url, _, _ = live.page(1, cookie)
    other_cookie, _ = live.login("mallory")
    stream = await SSEStream.open(url, {"Cookie": other_cookie})
    assert stream.status == 403
    assert await stream.read_rest() == b"The stream token was made for another session."


async def test_anything_but_get_is_405(live):
    url, _, _ = live.page(1)
    stream = await SSEStream.open(url, method="POST")
    assert stream.status == 405
    assert stream.headers["allow"] == "GET"
    assert await stream.read_rest() == b"Only GET opens a stream."


async def test_unknown_route_is_404(live):
    stream = await SSEStream.open(f"{live.url}/live/nowhere/")
    assert stream.status == 404
    await stream.read_rest()


# Lifecycle --------------------------------------------------------------------------


async def test_disconnect_clears_presence_and_calls_on_disconnect_once(live):
    url, claim, _ = live.page(1)
    connection = claim.split(".")[0]
    stream = await opened(url)
    # Presence shows a public id, never the id that claims the tab's changes.
    live.wait_for(lambda s: s["presence"]["doc-1"] == [public_id(connection)])
    await stream.close()
    stats = live.wait_for(lambda s: not s["presence"]["doc-1"] and s["disconnects"])
    assert stats["disconnects"] == [connection]
    assert stats["subscribers"] == 0


async def test_close_user_tells_htmx_to_stop(live):
    cookie, user_id = live.login("alice")
    stream = await opened(live.page(1, cookie)[0], Cookie=cookie)
    live.wait_for(lambda s: s["presence"]["doc-1"])
    live.request(f"/close-user/{user_id}/")
    events = await stream.events_until("reactive-close")
    assert events[-1].raw == b"event: reactive-close\ndata: \n\n"
    assert await stream.read_rest() == b""  # the server ended the response


# Convergence ------------------------------------------------------------------------


async def test_reconnect_with_an_old_last_event_id_resyncs(live):
    url, _, _ = live.page(1)
    live.change(set={"content": "changed while away"}, paths=["doc.content"])
    stream = await opened(url, **{"Last-Event-ID": "0"})
    events = {e.event: e.data for e in [await stream.next_event() for _ in range(4)]}
    assert events["content"] == "changed while away"
    assert set(events) == {"title", "content", "greeting", "fragile"}
    await stream.close()


async def test_last_event_id_query_parameter_is_accepted(live):
    url, _, _ = live.page(1)
    live.change(set={"title": "moved on"}, paths=["doc.title"])
    stream = await opened(with_query(url, last_event_id="0"))
    assert len([await stream.next_event() for _ in range(4)]) == 4
    await stream.close()


async def test_a_change_between_page_render_and_stream_open_is_not_missed(live):
    url, _, page = live.page(1)
    assert "Body" in page
    live.change(set={"content": "committed meanwhile"}, paths=["doc.content"])
    stream = await opened(url)  # carries since=<sequence when the page rendered>
    events = {e.event: e.data for e in [await stream.next_event() for _ in range(4)]}
    assert events["content"] == "committed meanwhile"
    await stream.close()


async def test_an_up_to_date_stream_does_not_resync(live):
    url, _, _ = live.page(1)
    stream = await opened(url)
    live.change(set={"title": "only this"}, paths=["doc.title"])
    first_two = {(await stream.next_event()).event for _ in range(2)}
    assert first_two == {"title", "greeting"}
    await stream.close()


async def test_unchanged_html_is_not_sent_again(live):
    stream = await opened(live.page(1)[0])
    live.change(set={"content": "v1"}, paths=["doc.content"])
    assert (await stream.next_event()).data == "v1"
    live.change(paths=["doc.content"])  # same data, same HTML: nothing to send
    live.change(set={"title": "next"}, paths=["doc.title"])
    assert (await stream.next_event()).event in {"title", "greeting"}
    await stream.close()


# Failures ---------------------------------------------------------------------------


async def test_a_raising_context_builder_skips_one_change(live):
    stream = await opened(live.page(1)[0])
    live.change(set={"content": "lost", "context_fails": 1}, paths=["doc.content"])
    live.change(set={"title": "kept"}, paths=["doc.title"])
    events = {e.event: e.data for e in [await stream.next_event() for _ in range(2)]}
    assert events["title"] == "kept"
    await stream.close()


async def test_a_raising_block_is_skipped_and_the_others_sent(live):
    stream = await opened(live.page(1)[0])
    live.change(
        set={"title": "still sent", "explode": True}, paths=["doc.title", "doc.fragile"]
    )
    events = {e.event: e.data for e in [await stream.next_event() for _ in range(2)]}
    assert events == {
        "title": "still sent",
        "greeting": "Hello guest, this is still sent",
    }
    live.change(
        set={"explode": False, "content": "after"}, paths=["doc.fragile", "doc.content"]
    )
    events = {e.event: e.data for e in [await stream.next_event() for _ in range(2)]}
    assert events == {"content": "after", "fragile": "intact"}
    await stream.close()


# Render once -------------------------------------------------------------------------


async def test_fifty_connections_render_each_shared_block_once(live):
    urls = [f"{live.url}/live/open/1/?connection=viewer-{n:04d}" for n in range(50)]
    streams = await asyncio.gather(*(opened(url) for url in urls))
    live.wait_for(lambda s: len(s["presence"]["doc-1"]) == 50)
    before = live.stats()["renders"]
    live.change(set={"content": "for fifty"}, paths=["doc.content"])
    received = await asyncio.gather(*(s.next_event() for s in streams))
    assert {(e.event, e.data) for e in received} == {("content", "for fifty")}
    after = live.stats()["renders"]
    assert (
        after["renders"] - before["renders"] == 1
    )  # one affected block, rendered once
    assert after["contexts"] - before["contexts"] == 1
    # No block of that batch reads the viewer: no connection context was built.
    assert after["connections"] == before["connections"]

    # A title change affects the shared title and the personal greeting block.
    live.change(set={"title": "fifty"}, paths=["doc.title"])
    await asyncio.gather(*(s.next_event() for s in streams))
    await asyncio.gather(*(s.next_event() for s in streams))
    final = live.stats()["renders"]
    assert final["renders"] - after["renders"] == 1 + 50
    assert final["connections"] - after["connections"] == 50
    await asyncio.gather(*(s.close() for s in streams))


async def test_an_open_stream_holds_no_task_of_its_own(live):
    """Idle streams cost the server's task for the connection and nothing more:
    heartbeats, lifetimes and changes are the hub's work."""
    before = json.loads(live.request("/tasks/")[2])["tasks"]
    urls = [f"{live.url}/live/open/1/?connection=idle-{n:04d}" for n in range(40)]
    streams = await asyncio.gather(*(opened(url) for url in urls))
    live.wait_for(lambda s: s["subscribers"] == 40)
    during = json.loads(live.request("/tasks/")[2])["tasks"]
    # One application task per connection (daphne's), one for their hub.
    assert during - before <= 40 + 1
    await asyncio.gather(*(s.close() for s in streams))
    live.wait_for(lambda s: s["subscribers"] == 0)


# Found in review -----------------------------------------------------------------------


async def test_pages_sharing_a_scope_never_share_renders_of_other_arguments(live):
    live.change(pk=2, set={"private": False}, paths=[])
    one = await opened(f"{live.url}/live/site/1/?connection=viewer-one-1")
    two = await opened(f"{live.url}/live/site/2/?connection=viewer-two-2")
    live.wait_for(lambda s: s["subscribers"] == 2)
    live.change(scope="all-docs", paths=["doc.content"], set={"content": "same"})
    live.change(pk=2, scope="all-docs", paths=["doc.title"], set={"title": "Second"})
    first = [await one.next_event() for _ in range(3)]
    second = [await two.next_event() for _ in range(3)]
    assert {e.event: e.data for e in first}["title"] == "Doc 1"
    assert {e.event: e.data for e in second}["title"] == "Second"
    await one.close()
    await two.close()


async def test_only_the_last_fragment_of_a_batch_carries_the_id(live):
    stream = await opened(live.page(1)[0])
    sequence = live.change(set={"title": "Two blocks"}, paths=["doc.title"])
    first, second = await stream.next_event(), await stream.next_event()
    assert (first.id, second.id) == (None, str(sequence))
    assert b"id:" not in first.raw
    await stream.close()


async def test_a_raising_get_scope_answers_500(live):
    stream = await SSEStream.open(f"{live.url}/live/open/99/")
    assert stream.status == 500
    assert await stream.read_rest() == b"The stream could not be opened."


async def test_a_non_ascii_digit_cursor_resyncs(live):
    stream = await opened(f"{live.url}/live/open/1/?last_event_id=%C2%B2")
    assert len([await stream.next_event() for _ in range(4)]) == 4  # every block
    live.change(set={"content": "fine"}, paths=["doc.content"])
    assert (await stream.next_event()).data == "fine"
    await stream.close()


async def test_a_page_from_another_bus_resyncs(live):
    url, _, _ = live.page(1)
    stream = await opened(with_query(url, epoch="00000000"))
    assert len([await stream.next_event() for _ in range(4)]) == 4
    await stream.close()


async def test_csrf_token_blocks_render_per_connection_with_the_cookie_token(live):
    from django.middleware.csrf import _unmask_cipher_token

    secret = "A" * 32
    stream = await opened(f"{live.url}/live/form/1/", Cookie=f"csrftoken={secret}")
    live.change(set={"title": "Form"}, paths=["doc.title"])
    event = await stream.next_event()
    assert event.event == "edit"
    token = event.data.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    assert _unmask_cipher_token(token) == secret
    assert 'value="Form"' in event.data
    await stream.close()


async def test_a_plain_on_disconnect_runs_in_a_thread_and_may_use_the_orm(live):
    stream = await opened(f"{live.url}/live/open/1/?connection=plain-hook-1")
    live.wait_for(lambda s: public_id("plain-hook-1") in s["presence"]["doc-1"])
    await stream.close()
    stats = live.wait_for(lambda s: s["disconnects"])
    assert stats["disconnects"] == ["plain-hook-1"]
