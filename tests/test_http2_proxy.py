"""docs/deployment.md's HTTP/2 recipe, tested: nginx in front of daphne, eight tabs
that each open their own connection (no SharedWorker) all stay live, since over
HTTP/2 they share the browser's one connection to the host."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser import chromium
from tests.proxy.nginx import STREAMS_LOCATION, nginx
from tests.test_pages import Site, pages_site

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT_DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with pages_site(tmp_path_factory.mktemp("h2"), PAGES_DEBUG="1") as site:
        yield site


def test_the_docs_give_the_tested_streams_location():
    recipe = (ROOT_DOCS / "deployment.md").read_text()
    for line in STREAMS_LOCATION.strip().splitlines():
        assert line.strip() in recipe, line


def test_eight_tabs_with_a_connection_each_stay_live_over_http2(site: Site, tmp_path):
    pk = site.post("/create/", {"title": "before"})["pk"]
    with nginx(site.url, tmp_path) as url, chromium() as browser:
        context = browser.new_context(ignore_https_errors=True)
        context.add_init_script("window.reactiveBlocksShared = false")
        tabs = [context.new_page() for _ in range(8)]
        for tab in tabs:
            tab.goto(f"{url}/notes/{pk}/")
            tab.wait_for_selector('body[data-reactive-state="live"]', timeout=15_000)
        protocol = tabs[0].evaluate(
            "() => performance.getEntriesByType('navigation')[0].nextHopProtocol"
        )
        assert protocol == "h2"
        site.post(f"/save/{pk}/", {"title": "seen through nginx"})
        for tab in tabs:
            tab.wait_for_function(
                "() => document.querySelector('#title').textContent === "
                "'seen through nginx'",
                timeout=15_000,
            )
        context.close()
