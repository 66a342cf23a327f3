"""htmx really swaps what the stream sends: a real page in Debian's Chromium."""

from __future__ import annotations

import pytest

from tests.browser import chromium
from tests.live_project import Live, live_project

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Live:
    with live_project(tmp_path_factory.mktemp("browser")) as project:
        yield project


def live_page(browser, live):
    """A new tab showing document 1, its stream open."""
    page = browser.new_page()
    page.goto(f"{live.url}/docs/1/")
    page.wait_for_function("() => window.htmx !== undefined")
    live.wait_for(lambda s: len(s["presence"]["doc-1"]) == 1, limit=15)
    return page


def test_two_blocks_update_in_the_page_and_keep_listening(live, tmp_path):
    live.reset()
    with chromium() as browser:
        page = live_page(browser, live)

        live.change(
            set={"title": "First change", "content": "New\nbody"},
            paths=["doc.title", "doc.content"],
        )
        page.wait_for_function(
            "() => document.querySelector('#doc-title').textContent === 'First change'"
        )
        page.wait_for_function(
            "() => document.querySelector('#doc-body').innerHTML === 'New<br>body'"
        )
        assert page.inner_text("#greeting") == "Hello guest, this is First change"

        # The swapped elements keep listening: a second change lands too.
        live.change(
            set={"title": "Second change", "content": "Again"},
            paths=["doc.title", "doc.content"],
        )
        page.wait_for_function(
            "() => document.querySelector('#doc-title').textContent === 'Second change'"
        )
        page.wait_for_function(
            "() => document.querySelector('#doc-body').textContent === 'Again'"
        )


def test_a_refused_stream_stops_retrying_and_marks_the_page_stale(live):
    live.reset()
    with chromium() as browser:
        page = browser.new_page()
        # The tab's own connection (no SharedWorker), so the page sees its requests.
        page.add_init_script("window.reactiveBlocksShared = false")
        attempts = []
        page.on(
            "request",
            lambda request: (
                attempts.append(request.post_data)
                if "/_reactive/streams/" in request.url
                else None
            ),
        )
        page.goto(f"{live.url}/docs/2/")  # private: a guest's stream gets 403
        page.wait_for_function(
            "() => document.querySelector('#live').dataset.reactiveStale === '403'"
        )
        assert page.get_attribute("#live", "data-reactive-state") == "refused"
        # The refused stream is not asked for again.
        assert len(attempts) == 1
        assert "/live/docs/2/" in attempts[0]


def test_a_block_too_large_to_stream_is_fetched_with_the_page(live):
    """Over MAX_FRAGMENT_BYTES the stream sends only the block's name; reactive.js
    fetches the page and swaps that block, and the stream keeps working."""
    live.reset()
    with chromium() as browser:
        page = live_page(browser, live)
        fetched = []
        page.on(
            "request",
            lambda request: (
                fetched.append(request.url)
                if request.url.endswith("/docs/1/")
                else None
            ),
        )
        huge = "z" * (300 * 1024)  # over the default 256 KiB
        live.change(set={"content": huge}, paths=["doc.content"])
        page.wait_for_function(
            "(n) => document.querySelector('#doc-body').textContent.length === n",
            arg=len(huge),
        )
        assert fetched == [f"{live.url}/docs/1/"]
        # The swapped-in block still listens to the stream.
        live.change(set={"content": "small"}, paths=["doc.content"])
        page.wait_for_function(
            "() => document.querySelector('#doc-body').textContent === 'small'"
        )


def test_a_connected_element_that_leaves_the_page_ends_its_stream(live):
    """An htmx swap or script that removes the element: its stream is closed,
    not left open (and counted against the visitor's limit) until the tab goes."""
    live.reset()
    with chromium() as browser:
        page = live_page(browser, live)
        page.wait_for_selector('#live[data-reactive-state="live"]')
        page.evaluate("() => document.querySelector('#live').remove()")
        live.wait_for(lambda s: s["open"] == 0 and not s["presence"]["doc-1"], limit=15)


def test_tabs_that_come_and_go_keep_the_other_tabs_streams(live):
    """The tabs share one connection, opened again as they come and go: the
    streams it takes over are not ended, and a closed tab's stream is."""
    live.reset()
    with chromium() as browser:
        context = browser.new_context()
        tabs = [context.new_page() for _ in range(3)]
        for tab in tabs:
            tab.goto(f"{live.url}/docs/1/")
            tab.wait_for_selector('#live[data-reactive-state="live"]')
        live.wait_for(lambda s: len(s["presence"]["doc-1"]) == 3, limit=15)
        tabs.pop().close()  # the worker learns it through the tab's lock
        live.wait_for(lambda s: len(s["presence"]["doc-1"]) == 2, limit=15)
        live.change(set={"title": "After a tab closed"}, paths=["doc.title"])
        for tab in tabs:
            tab.wait_for_function(
                "() => document.querySelector('#doc-title').textContent"
                " === 'After a tab closed'"
            )
            assert tab.get_attribute("#live", "data-reactive-state") == "live"
