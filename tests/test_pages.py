"""Live pages without a stream class, end to end: ordinary views served by daphne
through get_asgi_application(), a save from another client, what reaches the page."""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import subprocess
import sys
import urllib.request
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

from tests.live_server import ROOT, daphne
from tests.sse_client import SSEStream
from tests.waiting import eventually

if TYPE_CHECKING:
    from collections.abc import Iterator

SETTINGS = "tests.pages_site.settings"


class Site:
    def __init__(self, url: str) -> None:
        self.url = url
        self.env: dict[str, str] = {}

    def get(
        self, path: str, cookie: str | None = None
    ) -> tuple[int, dict[str, str], str]:
        request = urllib.request.Request(
            self.url + path, headers={"Cookie": cookie} if cookie else {}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode()

    def post(
        self,
        path: str,
        body: dict[str, Any],
        cookie: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        headers = {"Content-Type": "application/json", **(headers or {})}
        if cookie:
            headers["Cookie"] = cookie
        request = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), headers=headers
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def login(self, username: str) -> str:
        with urllib.request.urlopen(f"{self.url}/login/{username}/", timeout=10) as r:
            return next(
                c.split(";", 1)[0]
                for c in r.headers.get_all("Set-Cookie")
                if c.startswith("sessionid=")
            )

    def stream_of(self, path: str, cookie: str | None = None) -> str:
        status, _, page = self.get(path, cookie)
        assert status == 200, page
        connect = re.search(r'data-reactive-stream="([^"]+)"', page)
        assert connect, page
        return self.url + html.unescape(connect.group(1))


def manage(env: dict[str, str], *args: str) -> str:
    """Run ``manage.py`` of the pages project (its own process)."""
    done = subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=ROOT,
        env={
            **os.environ,
            **env,
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "PYTHONPATH": str(ROOT),
        },
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout


@contextmanager
def pages_site(directory: Any, bus: str = "memory", **knobs: str) -> Iterator[Site]:
    env = {"PAGES_DATABASE": str(directory / "db.sqlite3"), "PAGES_BUS": bus, **knobs}
    manage(env, "migrate", "--noinput", "-v0", "--run-syncdb")
    with daphne("tests.pages_site.asgi:application", SETTINGS, env) as url:
        site = Site(url)
        site.env = env
        yield site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with pages_site(tmp_path_factory.mktemp("pages")) as site:
        yield site


async def opened(url: str, cookie: str | None = None) -> SSEStream:
    stream = await SSEStream.open(url, {"Cookie": cookie} if cookie else None)
    assert stream.status == 200, (stream.status, stream.body)
    return stream


async def shows(stream: SSEStream, block: str, html: str) -> None:
    """Wait until the stream has sent ``block`` as ``html`` (a page that connects
    while its server is starting is sent everything first)."""
    while (await received(stream)).get(block) != html:
        pass


async def received(stream: SSEStream) -> dict[str, str]:
    """The blocks of the next batch (up to the event carrying its id)."""
    blocks = {}
    while True:
        event = await stream.next_event()
        blocks[event.event] = event.data
        if event.id is not None or event.event.startswith("reactive-"):
            return blocks


async def test_a_save_reaches_a_page_rendered_by_a_function_view(site: Site):
    pk = site.post("/create/", {"title": "first", "body": "b"})["pk"]
    stream = await opened(site.stream_of(f"/notes/{pk}/"))
    try:
        site.post(f"/save/{pk}/", {"title": "second"})
        assert (await received(stream))["title"] == "second"
        # Blocks that did not change since are not sent again.
        site.post(f"/save/{pk}/", {"body": "new body"})
        assert await received(stream) == {"body": "new body"}
    finally:
        await stream.close()


async def test_a_new_row_reaches_a_list_view(site: Site):
    site.post("/create/", {"title": "listed one"})
    stream = await opened(site.stream_of("/notes/"))
    try:
        site.post("/create/", {"title": "listed two"})
        notes = (await received(stream))["notes"]
        assert "listed one" in notes
        assert "listed two" in notes
        # A private row of someone else is not in this visitor's queryset.
        site.post("/create/", {"title": "hidden", "private": True})
        site.post("/create/", {"title": "listed three"})
        notes = (await received(stream))["notes"]
        assert "listed three" in notes
        assert "hidden" not in notes
    finally:
        await stream.close()


async def test_a_related_row_reaches_the_page_of_its_parent(site: Site):
    pk = site.post("/create/", {"title": "with remarks"})["pk"]
    stream = await opened(site.stream_of(f"/notes/{pk}/"))
    try:
        site.post(f"/remark/{pk}/", {"text": "a remark"})
        assert "<li>a remark</li>" in (await received(stream))["remarks"]
    finally:
        await stream.close()


async def test_each_browser_gets_its_own_render_and_one_view_run(site: Site):
    pk = site.post("/create/", {"title": "shared"})["pk"]
    alice, bob = site.login("alice-p"), site.login("bob-p")
    tabs = [
        await opened(site.stream_of(f"/notes/{pk}/", cookie), cookie)
        for cookie in (alice, alice, bob)
    ]
    try:
        before = site.get("/stats/")[2]
        site.post(f"/save/{pk}/", {"title": "seen by all"})
        seen = [await received(tab) for tab in tabs]
        assert [s["viewer"] for s in seen] == ["alice-p", "alice-p", "bob-p"]
        after = json.loads(site.get("/stats/")[2])
        # One view run per browser, not per tab.
        assert after["contexts"] - json.loads(before)["contexts"] == 2
    finally:
        for tab in tabs:
            await tab.close()


async def test_a_page_the_viewer_may_no_longer_see_ends_its_stream(site: Site):
    carol = site.login("carol-p")
    pk = site.post("/create/", {"title": "public for now"})["pk"]
    stream = await opened(site.stream_of(f"/notes/{pk}/", carol), carol)
    dave = site.login("dave-p")
    owner = await opened(site.stream_of(f"/notes/{pk}/", dave), dave)
    try:
        site.post(
            f"/save/{pk}/", {"private": True, "owner": "dave-p", "title": "secret"}
        )
        # get_object_or_404 now raises Http404 for carol: her stream ends, and
        # nothing of the change was sent to her.
        assert await received(stream) == {"reactive-close": ""}
        assert await stream.read_rest() is not None
    finally:
        await stream.close()
        await owner.close()


async def test_login_required_view_ends_the_stream_after_logout(site: Site):
    erin = site.login("erin-p")
    pk = site.post("/create/", {"title": "erin's"})["pk"]
    site.post(f"/save/{pk}/", {"owner": "erin-p"})
    stream = await opened(site.stream_of(f"/mine/{pk}/", erin), erin)
    try:
        site.post(f"/save/{pk}/", {"title": "still hers"})
        assert (await received(stream))["title"] == "still hers"
        site.get("/logout/", erin)
        site.post(f"/save/{pk}/", {"title": "after logout"})
        blocks = await received(stream)
        assert "title" not in blocks
        assert "reactive-close" in blocks or "reactive-reconnect" in blocks
    finally:
        await stream.close()


async def test_a_session_that_ends_without_logout_ends_the_stream(site: Site):
    """The view decides at the next change: the session is gone (no logout
    signal closed the stream first), the re-run redirects, the stream ends."""
    gail = site.login("gail-p")
    pk = site.post("/create/", {"title": "gail's"})["pk"]
    stream = await opened(site.stream_of(f"/guarded/{pk}/", gail), gail)
    try:
        site.post(f"/save/{pk}/", {"title": "while signed in"})
        assert (await received(stream))["title"] == "while signed in"
        site.get("/drop-session/", gail)
        site.post(f"/save/{pk}/", {"title": "after the session ended"})
        # GuardMiddleware's process_view redirects the re-run: nothing is sent.
        assert await received(stream) == {"reactive-close": ""}
    finally:
        await stream.close()


async def test_a_flushed_session_ends_its_streams_with_no_middleware(site: Site):
    hana = site.login("hana-p")
    pk = site.post("/create/", {"title": "hana's"})["pk"]
    stream = await opened(site.stream_of(f"/notes/{pk}/", hana), hana)
    try:
        site.get("/flush/", hana)  # the response deletes the session cookie
        assert await received(stream) == {"reactive-close": ""}
    finally:
        await stream.close()


async def test_a_rerun_saves_no_session_and_consumes_no_message(site: Site):
    frank = site.login("frank-p")
    pk = site.post("/create/", {"title": "counted"})["pk"]
    stream = await opened(site.stream_of(f"/notes/{pk}/", frank), frank)
    try:
        site.get("/flash/", frank)
        for title in ("one", "two"):
            site.post(f"/save/{pk}/", {"title": title})
            assert (await received(stream))["title"] == title
        # The page was loaded once; the two re-runs incremented nothing.
        assert json.loads(site.get("/views/", frank)[2]) == {"views": 1}
        # The message is still there for the next real page.
        assert "kept for the next page" in site.get(f"/notes/{pk}/", frank)[2]
    finally:
        await stream.close()


async def test_a_view_that_raises_skips_the_update_and_the_stream_goes_on(site: Site):
    pk = site.post("/create/", {"title": "fine"})["pk"]
    stream = await opened(site.stream_of(f"/broken/{pk}/"))
    try:
        runs = json.loads(site.get("/stats/")[2])["contexts"]
        site.post(f"/save/{pk}/", {"title": "break"})
        # The failing run happened (not merged away with the next change).
        await eventually(lambda: json.loads(site.get("/stats/")[2])["contexts"] > runs)
        site.post(f"/save/{pk}/", {"title": "fixed"})
        assert (await received(stream))["title"] == "fixed"
    finally:
        await stream.close()


async def test_the_tab_that_made_the_change_is_not_echoed(site: Site):
    pk = site.post("/create/", {"title": "mine"})["pk"]
    _, _, page = site.get(f"/notes/{pk}/")
    claim = json.loads(html.unescape(re.search(r'hx-headers="([^"]+)"', page).group(1)))
    author = await opened(
        site.url
        + html.unescape(re.search(r'data-reactive-stream="([^"]+)"', page).group(1))
    )
    other = await opened(site.stream_of(f"/notes/{pk}/"))
    try:
        site.post(f"/save/{pk}/", {"title": "by the author"}, headers=claim)
        assert (await received(other))["title"] == "by the author"
        site.post(f"/save/{pk}/", {"body": "by someone else"})
        # The author's tab gets the next change, not its own.
        blocks = await received(author)
        assert blocks["body"] == "by someone else"
    finally:
        await author.close()
        await other.close()


def test_a_view_marked_no_rerun_cannot_stream_itself(site: Site):
    pk = site.post("/create/", {"title": "side effects"})["pk"]
    status, _, _ = site.get(f"/side-effect/{pk}/")
    assert status == 500


async def test_a_forged_or_foreign_token_is_refused(site: Site):
    pk = site.post("/create/", {"title": "guarded"})["pk"]
    url = site.stream_of(f"/notes/{pk}/", site.login("gina-p"))
    stranger = await SSEStream.open(url)  # without gina's session
    assert stranger.status == 403
    await stranger.close()
    forged = await SSEStream.open(url.replace("token=", "token=x"))
    assert forged.status == 403
    await forged.close()


# The default bus: through the database, across processes ------------------------


@pytest.fixture(scope="module")
def site_on_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with pages_site(tmp_path_factory.mktemp("pages-db"), bus="default") as site:
        yield site


async def test_a_save_in_manage_py_shell_reaches_the_page(site_on_database: Site):
    site = site_on_database
    pk = site.post("/create/", {"title": "before the shell"})["pk"]
    stream = await opened(site.stream_of(f"/notes/{pk}/"))
    try:
        command = (
            "from tests.models import Note; "
            f"n = Note.objects.get(pk={pk}); n.title = 'from the shell'; n.save()"
        )
        await asyncio.to_thread(manage, site.env, "shell", "-c", command)
        await shows(stream, "title", "from the shell")
    finally:
        await stream.close()


async def test_a_save_served_by_another_process_reaches_the_page(
    site_on_database: Site,
):
    site = site_on_database
    pk = site.post("/create/", {"title": "two servers"})["pk"]
    stream = await opened(site.stream_of(f"/notes/{pk}/"))
    try:
        with daphne("tests.pages_site.asgi:application", SETTINGS, site.env) as other:
            await asyncio.to_thread(
                Site(other).post, f"/save/{pk}/", {"title": "saved over there"}
            )
            await shows(stream, "title", "saved over there")
    finally:
        await stream.close()
