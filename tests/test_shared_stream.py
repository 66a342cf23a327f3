"""One connection carries every stream of a tab (streams/shared.py), end to end on
daphne: each stream signed and authorized on its own, resumed after its last event,
bad requests refused with a reason."""

from __future__ import annotations

import html
import json
import re
from typing import TYPE_CHECKING

import pytest

from tests.sse_client import Event, SSEStream
from tests.test_pages import Site, pages_site
from tests.waiting import eventually

if TYPE_CHECKING:
    from collections.abc import Iterator

PATH = "/_reactive/streams/"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with pages_site(tmp_path_factory.mktemp("shared")) as site:
        yield site


def stream_url(site: Site, path: str, cookie: str | None = None) -> str:
    status, _, page = site.get(path, cookie)
    assert status == 200, page
    found = re.search(r'data-reactive-stream="([^"]+)"', page)
    assert found, page
    return html.unescape(found.group(1))


async def shared(site: Site, *streams: dict[str, str | None], **headers: str):
    body = json.dumps({"streams": list(streams)}).encode()
    return await SSEStream.open(
        site.url + PATH,
        {"Content-Type": "application/json", **headers},
        method="POST",
        body=body,
    )


async def by_channel(stream: SSEStream, until: int) -> dict[int, list[Event]]:
    """Events by the channel they came on, until channel ``until`` sends an id."""
    channels: dict[int, list[Event]] = {}
    current = -1
    while True:
        event = await stream.next_event()
        if event.event == "reactive-channel":
            current = int(event.data)
            continue
        channels.setdefault(current, []).append(event)
        if current == until and event.id is not None:
            return channels


async def test_every_stream_of_a_request_is_served_in_one_response(site: Site):
    pk = site.post("/create/", {"title": "first"})["pk"]
    note, notes = stream_url(site, f"/notes/{pk}/"), stream_url(site, "/notes/")
    stream = await shared(site, {"url": note}, {"url": notes})
    assert stream.status == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    opened = {int((await stream.next_event()).data) for _ in range(2)}
    assert opened == {0, 1}  # each stream says it is open
    site.post(f"/save/{pk}/", {"title": "second"})
    first = await by_channel(stream, 0)
    assert {e.event: e.data for e in first[0]}["title"] == "second"
    rest = first if 1 in first else await by_channel(stream, 1)
    assert "<li>second</li>" in {e.event: e.data for e in rest[1]}["notes"]
    await stream.close()


async def test_a_refused_stream_is_named_and_the_others_go_on(site: Site):
    pk = site.post("/create/", {"title": "kept"})["pk"]
    forged = "/_reactive/page/?token=forged&since=0"
    stream = await shared(
        site, {"url": forged}, {"url": stream_url(site, f"/notes/{pk}/")}
    )
    events = [await stream.next_event() for _ in range(2)]
    assert ("reactive-refused", "0 403 0") in [(e.event, e.data) for e in events]
    site.post(f"/save/{pk}/", {"title": "still live"})
    blocks = await by_channel(stream, 1)
    assert {e.event: e.data for e in blocks[1]}["title"] == "still live"
    await stream.close()


async def test_a_new_connection_resumes_each_stream_after_its_last_event(site: Site):
    pk = site.post("/create/", {"title": "v1"})["pk"]
    url = stream_url(site, f"/notes/{pk}/")
    stream = await shared(site, {"url": url, "last": None})
    await stream.next_event()
    site.post(f"/save/{pk}/", {"title": "v2"})
    last = [e for e in (await by_channel(stream, 0))[0] if e.id][-1].id
    await stream.close()
    # While no connection is open, the note changes.
    site.post(f"/save/{pk}/", {"title": "v3"})
    stream = await shared(site, {"url": url, "last": last})
    await stream.next_event()
    blocks = await by_channel(stream, 0)
    assert {e.event: e.data for e in blocks[0]}["title"] == "v3"
    assert int(blocks[0][-1].id) > int(last)
    await stream.close()


async def test_moving_streams_to_a_new_connection_costs_one_open(
    tmp_path_factory: pytest.TempPathFactory,
):
    """A tab that opens beside others makes the browser reopen its streams in a
    new connection: the streams already open are not counted again. Here a
    visitor may open 3 streams at once; three are open, and moved twice."""
    with pages_site(tmp_path_factory.mktemp("burst"), PAGES_OPENS_BURST="3") as site:
        urls = []
        for number in range(3):
            pk = site.post("/create/", {"title": str(number)})["pk"]
            urls.append(stream_url(site, f"/notes/{pk}/"))
        previous = None
        for _ in range(3):
            stream = await shared(site, *({"url": url} for url in urls))
            opened = [await stream.next_event() for _ in range(3)]
            assert [e.event for e in opened] == ["reactive-channel"] * 3, opened
            if previous is not None:
                await previous.close()
            previous = stream
        # A fourth stream is new: it is counted, and the visitor has none left.
        pk = site.post("/create/", {"title": "new"})["pk"]
        stream = await shared(site, {"url": stream_url(site, f"/notes/{pk}/")})
        refused = await stream.next_event()
        assert (refused.event, refused.data.split()[:2]) == (
            "reactive-refused",
            ["0", "429"],
        )
        await stream.close()
        assert previous is not None
        await previous.close()


async def test_a_stream_asked_for_twice_in_one_connection_is_refused_once(site: Site):
    """Else one request could open a stream many times, each time free of the
    open-rate limit (a stream moved to a new connection is not counted)."""
    pk = site.post("/create/", {"title": "twice"})["pk"]
    url = stream_url(site, f"/notes/{pk}/")
    stream = await shared(site, {"url": url}, {"url": url + "&again=1"})
    try:
        events = [await stream.next_event() for _ in range(2)]
    finally:
        await stream.close()
    # Which of the two is served first is not fixed: the other is refused.
    assert sorted(e.event for e in events) == ["reactive-channel", "reactive-refused"]
    refused = next(e for e in events if e.event == "reactive-refused")
    assert refused.data.split()[1] == "400"


async def test_the_streams_of_a_connection_end_with_it(site: Site):
    urls = []
    for number in range(3):
        pk = site.post("/create/", {"title": f"held {number}"})["pk"]
        urls.append(stream_url(site, f"/notes/{pk}/"))
    before = _open(site)
    stream = await shared(site, *({"url": url} for url in urls))
    for _ in range(3):
        await stream.next_event()
    assert _open(site) == before + 3
    await stream.close()
    await eventually(lambda: _open(site) == before)


def _open(site: Site) -> int:
    return int(json.loads(site.get("/stats/")[2])["open"])


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Content-Type": "text/plain"}, "with a JSON body"),
        (
            {"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"},
            "by the site's own pages only",
        ),
    ],
)
async def test_a_request_from_another_site_is_refused(site: Site, headers, reason):
    body = json.dumps({"streams": [{"url": "/x/"}]}).encode()
    stream = await SSEStream.open(site.url + PATH, headers, method="POST", body=body)
    assert stream.status == 403
    assert reason in (await stream.read_rest()).decode()


@pytest.mark.parametrize(
    ("method", "body", "status", "reason"),
    [
        ("GET", None, 405, "Only POST opens streams here."),
        ("POST", b"not json", 400, "The request body is not JSON"),
        ("POST", b'{"streams": []}', 400, "with at least one stream"),
        (
            "POST",
            json.dumps({"streams": [{"url": "/x/"}] * 65}).encode(),
            400,
            "At most 64 streams share a connection; 65 asked.",
        ),
        (
            "POST",
            json.dumps({"streams": [{"url": "//evil.example/"}]}).encode(),
            400,
            "Stream 0 needs a 'url' that is a path of this site, got '//evil.example/'.",
        ),
        (
            "POST",
            json.dumps({"streams": [{"url": "/x/", "last": "1\n2"}]}).encode(),
            400,
            "Stream 0 has a 'last' that is not an event id: '1\\n2'.",
        ),
        (
            "POST",
            json.dumps({"streams": [{"url": "/" + "x" * 70_000}]}).encode(),
            413,
            "The request body is too large",
        ),
    ],
)
async def test_a_bad_request_is_refused_with_its_reason(
    site: Site, method, body, status, reason
):
    headers = {"Content-Type": "application/json"}
    stream = await SSEStream.open(site.url + PATH, headers, method=method, body=body)
    assert stream.status == status
    assert reason in (await stream.read_rest()).decode()


async def test_a_block_with_a_tag_that_reads_the_user_renders_for_each_viewer(
    site: Site,
):
    """A tag of its own reads context["user"] as it renders: its block is taken
    to read everything, so a stream class renders it for each viewer, as the
    page did (not once for nobody)."""
    opened = {}
    for name in ("alice", "bob"):
        cookie = site.login(name)
        url = stream_url(site, "/greeting/", cookie)
        opened[name] = await shared(site, {"url": url}, Cookie=cookie)
        await opened[name].next_event()
    site.post("/create/", {"title": "for everyone"})
    for name, stream in opened.items():
        blocks = {}
        while "who" not in blocks:
            event = await stream.next_event()
            blocks[event.event] = event.data
        assert blocks["who"] == f"Notes {name}"
        await stream.close()
