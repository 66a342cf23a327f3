"""Every feature of the demo in a real browser: alice and bob in two Chromium contexts
against the demo served by daphne, as ``make demo`` serves it."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser import chromium
from tests.live_server import ROOT, served
from tests.redis_server import RedisServer
from tests.test_demo import demo_process_env, manage

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.timeout(240)

APPLICATION = "demo_project.asgi:application"
SETTINGS = "demo_project.settings"
PASSWORDS = {"alice": "alice-demo", "bob": "bob-demo"}
WELCOME, NOTES, PRIVATE = 1, 2, 3  # the seeded documents
ARTIFACT = ROOT / "build" / "demo.png"
WAIT = 15_000  # ms: what a page may take to show a change (far more than needed)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    """A migrated, seeded demo database; each test serves a copy of it."""
    database = tmp_path_factory.mktemp("demo") / "seeded.sqlite3"
    for command in (["migrate", "--noinput", "-v0"], ["seed_demo"]):
        subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=demo_process_env({"DEMO_DATABASE": str(database)}),
            check=True,
            capture_output=True,
            timeout=120,
        )
    return database


@pytest.fixture
def database(seeded, tmp_path) -> Path:
    copy = tmp_path / "demo.sqlite3"
    shutil.copy(seeded, copy)
    return copy


@contextmanager
def demo(database: Path, port: int = 0, **env: str) -> Iterator[tuple[str, Any]]:
    with served(
        APPLICATION, SETTINGS, {"DEMO_DATABASE": str(database), **env}, port
    ) as (url, process):
        yield url, process


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as launched:
        launched.page_errors = []
        yield launched
        # A JavaScript error on any page fails the test, even one no step noticed.
        assert launched.page_errors == []


def signed_in(browser: Any, url: str, name: str | None) -> Any:
    """A page in a browser context of its own, logged in as ``name`` (None: guest)."""
    context = browser.new_context(viewport={"width": 760, "height": 900})
    context.on("weberror", lambda error: browser.page_errors.append(error.error))
    page = context.new_page()
    page.set_default_timeout(WAIT)
    if name is not None:
        page.goto(f"{url}/login/")
        page.fill("#id_username", name)
        page.fill("#id_password", PASSWORDS[name])
        page.click("button[type=submit]")
        page.wait_for_selector("#username")
    return page


def open_live(page: Any, url: str, path: str, element: str = "#doc") -> None:
    page.goto(url + path)
    page.wait_for_selector(f'{element}[data-reactive-state="live"]')


def edit(page: Any, title: str | None = None, body: str | None = None) -> None:
    if title is not None:
        page.fill("#editor [name=title]", title)
    if body is not None:
        page.fill("#editor [name=body]", body)
    page.click("#editor button[type=submit]")


def count_swaps(page: Any) -> None:
    """Record the SSE messages the page swaps, by block name."""
    page.evaluate(
        """() => { window.swapped = [];
        document.body.addEventListener('htmx:sseMessage',
            (e) => window.swapped.push(e.detail.type)); }"""
    )


def everyone_listed(pages: list[Any], users: str, guests: int = 0) -> None:
    """Wait until every page lists these viewers. A tab whose page was rendered
    before another tab joined is sent every block once it connects (that join
    changed the page: a resync); once presence shows everyone everywhere, no
    such resync is still on its way, and swaps counted from then on are the
    test's own."""
    listed = (
        "() => [...document.querySelectorAll('#viewers li')]"
        ".map((li) => li.textContent).join()"
    )
    for page in pages:
        page.wait_for_function(f"{listed} === {users!r}")
        if guests:
            page.wait_for_selector(f"#viewers :text('and {guests} guest')")


def text_is(page: Any, selector: str, text: str) -> None:
    page.wait_for_function(
        "([s, t]) => document.querySelector(s)?.textContent.trim() === t",
        arg=[selector, text],
    )


def test_an_edit_shows_in_the_other_window_and_is_not_echoed(database, browser):
    with demo(database) as (url, _):
        alice, bob = signed_in(browser, url, "alice"), signed_in(browser, url, "bob")
        open_live(alice, url, f"/docs/{WELCOME}/")
        open_live(bob, url, f"/docs/{WELCOME}/")
        everyone_listed([alice, bob], "alice,bob")
        count_swaps(bob)
        edit(bob, title="Edited by bob", body="one two three four five")
        text_is(alice, "#doc-title", "Edited by bob")
        alice.wait_for_function(
            "() => document.querySelector('#doc-stats').textContent.includes('5 words')"
        )
        assert "one two three four five" in alice.inner_text("#doc-body")
        text_is(bob, "#doc-title", "Edited by bob")  # its own response updated it
        # A later change of alice's reaches bob: by then an echo would have too.
        alice.fill("#comment-form textarea", "Looks good")
        alice.click("#comment-form button[type=submit]")
        bob.wait_for_function("() => window.swapped.includes('comments')")
        echoed = {"title", "body", "stats", "version"} & set(
            bob.evaluate("window.swapped")
        )
        assert not echoed
        shoot(alice, bob)


def test_long_text_wraps_inside_the_page(database, browser):
    with demo(database) as (url, _):
        alice = signed_in(browser, url, "alice")
        open_live(alice, url, f"/docs/{WELCOME}/")
        edit(alice, title="W" * 200, body="x" * 2000)
        text_is(alice, "#doc-title", "W" * 200)
        assert alice.evaluate(
            "() => document.documentElement.scrollWidth"
            " <= document.documentElement.clientWidth"
        )


def test_the_list_page_is_live(database, browser):
    with demo(database) as (url, _):
        watcher = signed_in(browser, url, None)
        open_live(watcher, url, "/", element="#list")
        bob = signed_in(browser, url, "bob")
        open_live(bob, url, f"/docs/{NOTES}/")
        edit(bob, title="Renamed notes")
        watcher.wait_for_selector("#documents a:text('Renamed notes')")
        # A private document is listed to its owner alone: the list is the
        # page's own view, re-run for each browser.
        assert "private draft" not in watcher.inner_text("#documents").lower()
        owner = signed_in(browser, url, "alice")
        open_live(owner, url, "/", element="#list")
        assert "private draft" in owner.inner_text("#documents").lower()
        # Created and deleted elsewhere: it comes and goes without a reload.
        bob.goto(f"{url}/")
        bob.click("#new-document")
        watcher.wait_for_selector("#documents a:text('Untitled, by bob')")
        bob.once("dialog", lambda dialog: dialog.accept())
        bob.click("#delete-document")
        watcher.wait_for_selector(
            "#documents a:text('Untitled, by bob')", state="detached"
        )


def test_presence_lists_each_user_once_and_drops_a_closed_tab(database, browser):
    with demo(database) as (url, _):
        alice = signed_in(browser, url, "alice")
        open_live(alice, url, f"/docs/{WELCOME}/")
        bob = signed_in(browser, url, "bob")
        open_live(bob, url, f"/docs/{WELCOME}/")
        second = bob.context.new_page()  # bob's second tab: still one viewer
        open_live(second, url, f"/docs/{WELCOME}/")
        guest = signed_in(browser, url, None)
        open_live(guest, url, f"/docs/{WELCOME}/")
        listed = (
            "() => [...document.querySelectorAll('#viewers li')]"
            ".map((li) => li.textContent).join()"
        )
        alice.wait_for_function(f"{listed} === 'alice,bob'")
        alice.wait_for_selector("#viewers :text('and 1 guest')")
        second.close()  # one of bob's tabs: he is still watching
        guest.context.close()
        alice.wait_for_function(
            "() => !document.querySelector('#viewers').textContent.includes('guest')"
        )
        assert alice.evaluate(f"({listed})()") == "alice,bob"
        bob.context.close()
        text_is(alice, "#viewers li", "alice")  # after the grace period


def test_a_mention_shows_only_to_the_user_mentioned(database, browser):
    with demo(database) as (url, _):
        alice, bob = signed_in(browser, url, "alice"), signed_in(browser, url, "bob")
        guest = signed_in(browser, url, None)
        for page in (alice, bob, guest):
            open_live(page, url, f"/docs/{WELCOME}/")
        everyone_listed([alice, bob, guest], "alice,bob", guests=1)
        for page in (alice, bob, guest):
            count_swaps(page)
        bob.fill("#comment-form textarea", "@alice please review")
        bob.click("#comment-form button[type=submit]")
        alice.wait_for_selector("#notifications:has-text('bob mentioned you')")
        guest.wait_for_function("() => window.swapped.includes('comments')")
        bob.wait_for_selector("#comments:has-text('please review')")  # not echoed:
        assert "comments" not in bob.evaluate("window.swapped")  # its own response
        alice.wait_for_function("() => window.swapped.includes('comments')")
        for page in (bob, guest):
            # The audience kept the notification event from them altogether.
            assert "notifications" not in page.evaluate("window.swapped")
            assert page.inner_text("#notifications") == ""
        alice.click("#notifications button")
        alice.wait_for_function(
            "() => !document.querySelector('#notifications .notice')"
        )


def test_a_private_document_streams_only_to_its_owner(database, browser):
    with demo(database) as (url, _):
        bob = signed_in(browser, url, "bob")
        response = bob.goto(f"{url}/docs/{PRIVATE}/")
        assert response.status == 403
        assert "This document is private" in bob.inner_text("h1")
        owner = signed_in(browser, url, "alice")
        open_live(owner, url, f"/docs/{PRIVATE}/")
        stream = owner.get_attribute("#doc", "data-reactive-stream")
        assert (
            owner.evaluate("(u) => fetch(u + '&probe=1').then((r) => r.status)", stream)
            == 204
        )
        assert (
            bob.evaluate(
                "(u) => fetch(u + '&probe=1').then((r) => r.status)", f"{url}{stream}"
            )
            == 403
        )
        # Bob watches a document alice then makes private: his stream is ended.
        alice = signed_in(browser, url, "alice")
        open_live(alice, url, f"/docs/{WELCOME}/")
        open_live(bob, url, f"/docs/{WELCOME}/")
        alice.check("#editor [name=private]")
        edit(alice)
        bob.wait_for_selector('#doc[data-reactive-state="ended"]')
        assert "not live" in bob.evaluate(
            "getComputedStyle(document.querySelector('#doc .indicator'), '::after')"
            ".content"
        )
        assert bob.goto(f"{url}/docs/{WELCOME}/").status == 403


def test_a_stale_save_is_refused_and_keeps_the_text(database, browser):
    with demo(database) as (url, _):
        alice, bob = signed_in(browser, url, "alice"), signed_in(browser, url, "bob")
        open_live(alice, url, f"/docs/{NOTES}/")
        open_live(bob, url, f"/docs/{NOTES}/")
        alice.fill("#editor [name=body]", "alice's long thought")
        edit(bob, body="bob was first")
        # Alice's form is not clobbered, and says the document moved on.
        alice.wait_for_selector("#editor .changed:not([hidden])")
        assert alice.input_value("#editor [name=body]") == "alice's long thought"
        edit(alice)
        alice.wait_for_selector("#conflict")
        assert "bob saved version 2" in alice.inner_text("#conflict")
        assert alice.input_value("#editor [name=body]") == "alice's long thought"
        assert "bob was first" in alice.inner_text("#doc-body")


def test_the_editing_form_is_live_and_keeps_what_is_typed(database, browser):
    """The editor is a live block: someone else's save shows in the fields one
    has not touched, while the text being typed (and the version it started
    from) stays."""
    with demo(database) as (url, _):
        alice, bob = signed_in(browser, url, "alice"), signed_in(browser, url, "bob")
        open_live(alice, url, f"/docs/{NOTES}/")
        open_live(bob, url, f"/docs/{NOTES}/")
        alice.click("#editor [name=title]")
        alice.keyboard.press("End")
        alice.keyboard.type(" (alice is typing)")
        edit(bob, body="bob's new body")
        # Alice's untouched body field shows bob's text; her title is hers.
        alice.wait_for_function(
            "() => document.querySelector('#editor [name=body]').value"
            ' === "bob\'s new body"'
        )
        assert alice.input_value("#editor [name=title]").endswith(" (alice is typing)")
        assert alice.evaluate("() => document.activeElement.name") == "title"
        # The form still says which version she started from: her save is refused.
        alice.wait_for_selector("#editor .changed:not([hidden])")
        edit(alice)
        alice.wait_for_selector("#conflict")
        assert alice.input_value("#editor [name=title]").endswith(" (alice is typing)")


def test_the_document_list_sends_the_row_that_changed(database, browser):
    with demo(database) as (url, _):
        alice, bob = signed_in(browser, url, "alice"), signed_in(browser, url, "bob")
        open_live(alice, url, "/", element="#list")
        alice.evaluate(
            """() => { window.rows = []; document.addEventListener('htmx:sseMessage',
                (e) => window.rows.push(e.detail.rows || 'whole')); }"""
        )
        open_live(bob, url, f"/docs/{WELCOME}/")
        for title in ("Renamed by bob", "Renamed twice", "Renamed thrice"):
            edit(bob, title=title)
            text_is(alice, f"#document-{WELCOME} a", title)
        sent = alice.evaluate("() => window.rows")
        # At most the first change is sent whole (the server learns from it the
        # rows the page shows); the others are that row alone. Presence (bob
        # came and went) names no rows: it redraws nothing.
        assert [x != "whole" for x in sent[-2:]] == [True, True], sent
        assert [put["id"] for put in sent[-1]["put"]] == [f"document-{WELCOME}"]
        assert sent.count("whole") <= 1, sent


def test_eight_tabs_of_one_browser_stay_live_over_http_1_1(database, browser):
    """HTTP/1.1 gives a host six connections: eight tabs with a stream each would
    leave two frozen (and the page loads behind them). The tabs share one."""
    with demo(database) as (url, _):
        alice = signed_in(browser, url, "alice")
        tabs = [alice, *(alice.context.new_page() for _ in range(7))]
        for tab in tabs:
            tab.set_default_timeout(WAIT)
            open_live(tab, url, f"/docs/{WELCOME}/")
        bob = signed_in(browser, url, "bob")
        open_live(bob, url, f"/docs/{WELCOME}/")
        for tab in tabs:
            tab.evaluate(
                """() => { document.body.addEventListener('htmx:sseMessage', () => {
                    window.arrived = window.arrived || performance.timeOrigin + performance.now();
                }); }"""
            )
        sent = bob.evaluate("() => performance.timeOrigin + performance.now()")
        edit(bob, title="Seen in eight tabs")
        for tab in tabs:
            text_is(tab, "#doc-title", "Seen in eight tabs")
        delays = [tab.evaluate("() => window.arrived") - sent for tab in tabs]
        print(f"an edit reached 8 tabs after {max(delays):.0f} ms at most")
        # The new tabs' pages still load: no connection is held by a stream.
        tabs[-1].reload()
        tabs[-1].wait_for_selector('#doc[data-reactive-state="live"]')


def test_a_restarted_server_is_reconnected_to_and_the_page_converges(database, browser):
    with demo(database) as (url, process):
        alice = signed_in(browser, url, "alice")
        open_live(alice, url, f"/docs/{WELCOME}/")
        port = int(url.rsplit(":", 1)[1])
        process.terminate()
        process.wait(timeout=30)
        alice.wait_for_selector('#doc[data-reactive-state="reconnecting"]')
        # A save while the server is away says so, and keeps the text.
        edit(alice, title="Typed during the outage")
        alice.wait_for_selector("#editor .save-status:not([hidden])")
        assert "Not saved" in alice.inner_text("#editor .save-status")
        assert alice.input_value("#editor [name=title]") == "Typed during the outage"
        # Meanwhile the data changes in another process, with no server running:
        # the change waits in the database bus's table for the next one.
        changed = manage(
            {"DEMO_DATABASE": str(database)},
            "shell",
            "-c",
            "from demo_project.demo.models import Document; "
            f"d = Document.objects.get(pk={WELCOME}); d.title = 'Changed while down'; "
            "d.save()",
        )
        assert changed.returncode == 0, changed.stderr
    with demo(database, port=port) as (url, _):
        alice.wait_for_selector('#doc[data-reactive-state="live"]', timeout=40_000)
        # The new server's stream resyncs the page: it converges by itself.
        text_is(alice, "#doc-title", "Changed while down")
        bob = signed_in(browser, url, "bob")
        open_live(bob, url, f"/docs/{WELCOME}/")
        edit(bob, title="After the restart")
        text_is(alice, "#doc-title", "After the restart")


@pytest.fixture
def redis(tmp_path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as server:
        yield server


def test_two_processes_on_redis_share_edits_and_presence(database, browser, redis):
    env = {"DEMO_REDIS_URL": redis.url}
    with demo(database, **env) as (first, _), demo(database, **env) as (second, _):
        alice = signed_in(browser, first, "alice")
        bob = signed_in(browser, second, "bob")
        open_live(alice, first, f"/docs/{WELCOME}/")
        open_live(bob, second, f"/docs/{WELCOME}/")
        alice.wait_for_function(
            "() => document.querySelector('#viewers').textContent.includes('bob')"
        )
        edit(bob, title="From the other process", body="a b c")
        text_is(alice, "#doc-title", "From the other process")
        alice.wait_for_function(
            "() => document.querySelector('#doc-stats').textContent.includes('3 words')"
        )
        bob.context.close()  # leaves on the other process, after the grace period
        alice.wait_for_function(
            "() => !document.querySelector('#viewers').textContent.includes('bob')"
        )


def shoot(left: Any, right: Any) -> None:
    """The two windows side by side, as an artifact of the run (build/demo.png;
    docs/assets/demo.png is a copy of one, for the README and docs)."""
    for page in (left, right):
        page.evaluate("window.scrollTo(0, 0)")
    shots = [base64.b64encode(page.screenshot()).decode() for page in (left, right)]
    board = left.context.browser.new_page(viewport={"width": 1536, "height": 900})
    board.set_content(
        '<body style="margin:0;background:#d0d5dd;display:flex;gap:16px">'
        + "".join(f'<img src="data:image/png;base64,{shot}">' for shot in shots)
        + "</body>"
    )
    ARTIFACT.parent.mkdir(exist_ok=True)
    board.screenshot(path=str(ARTIFACT))
    board.close()
    assert ARTIFACT.stat().st_size > 10_000
