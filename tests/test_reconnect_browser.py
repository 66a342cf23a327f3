"""A stream that ends its lifetime is reopened where it left off (Chromium through
Playwright, a live page served by daphne)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser import chromium
from tests.test_pages import Site, pages_site

if TYPE_CHECKING:
    from collections.abc import Iterator

OPENS = """document.addEventListener('htmx:sseOpen', () => {
    window.opens = (window.opens || 0) + 1;
})"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with pages_site(
        tmp_path_factory.mktemp("lifetime"),
        PAGES_DEBUG="1",
        PAGES_STREAM_MAX_SECONDS="2",
    ) as site:
        yield site


def test_a_stream_whose_lifetime_ends_is_reopened_and_keeps_updating(site: Site):
    pk = site.post("/create/", {"title": "before"})["pk"]
    with chromium() as browser:
        page = browser.new_page()
        page.add_init_script(OPENS)
        page.goto(f"{site.url}/notes/{pk}/")
        page.wait_for_function("() => window.opens >= 1", timeout=15_000)
        site.post(f"/save/{pk}/", {"title": "first"})
        page.wait_for_function(
            "() => document.querySelector('#title').textContent === 'first'"
        )
        # Its 2 s lifetime ends: the connection is opened again, by itself.
        page.wait_for_function("() => window.opens >= 3", timeout=15_000)
        site.post(f"/save/{pk}/", {"title": "second"})
        page.wait_for_function(
            "() => document.querySelector('#title').textContent === 'second'"
        )
        assert page.get_attribute("body", "data-reactive-state") == "live"
