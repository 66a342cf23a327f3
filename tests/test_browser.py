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
