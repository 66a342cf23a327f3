"""Swapped blocks are morphed: what the user is doing inside one survives updates
(Chromium through Playwright, a live page served by daphne)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser import chromium
from tests.test_pages import Site, pages_site

if TYPE_CHECKING:
    from collections.abc import Iterator

VENDOR = Path(__file__).resolve().parent / "vendor"
SSE_OPEN = "document.addEventListener('htmx:sseOpen', () => { window.sseOpen = true })"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with pages_site(tmp_path_factory.mktemp("morph"), PAGES_DEBUG="1") as site:
        yield site


# htmx 2.0.11 is what {% reactive_scripts %} ships; the others replace it in the
# page (tests/vendor, from the npm registry) to check what docs/connections.md says.
HTMX = ["shipped", "1.9.12", "4.0.1"]


@pytest.mark.parametrize("htmx", HTMX)
def test_typing_focus_caret_details_and_scroll_survive_twenty_remote_updates(
    site, htmx
):
    pk = site.post("/create/", {"title": "server title", "body": "update 0"})["pk"]
    with chromium() as browser:
        page = browser.new_page()
        page.add_init_script(SSE_OPEN)
        if htmx != "shipped":
            page.route(
                "**/reactive_blocks/vendor/htmx.min.js",
                lambda route: route.fulfill(
                    path=VENDOR / f"htmx-{htmx}.min.js",
                    content_type="text/javascript",
                ),
            )
        page.goto(f"{site.url}/morph/{pk}/")
        if htmx != "shipped":
            assert page.evaluate("() => htmx.version") == htmx
        page.wait_for_function("() => window.sseOpen === true", timeout=15000)
        page.click("#more summary")  # open the <details>
        page.eval_on_selector("#scroller", "element => { element.scrollTop = 120 }")
        page.click("#field")
        page.keyboard.press("End")
        page.keyboard.type(" and what I type")
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("ArrowLeft")  # the caret two characters from the end
        for number in range(1, 21):
            # Other parts of the block change, and the very field too.
            body = {"body": f"update {number}"}
            if number == 10:
                body["title"] = "changed on the server"
            site.post(f"/save/{pk}/", body)
        page.wait_for_function(
            "() => document.querySelector('#count').textContent === 'update 20'"
        )
        page.wait_for_function(
            "() => document.querySelector('#plain').textContent === 'update 20'"
        )
        state = page.evaluate(
            """() => {
                const field = document.querySelector('#field');
                return {
                    value: field.value,
                    focused: document.activeElement === field,
                    caret: [field.selectionStart, field.selectionEnd],
                    open: document.querySelector('#more').open,
                    inside: document.querySelector('#inside').textContent,
                    scroll: document.querySelector('#scroller').scrollTop,
                    morphed: document.querySelector('#editor').getAttribute('hx-swap'),
                };
            }"""
        )
    typed = "server title and what I type"
    assert state["value"] == typed  # the user's text wins while the field has focus
    assert state["focused"]
    assert state["caret"] == [len(typed) - 2, len(typed) - 2]
    assert state["open"]
    assert state["inside"] == "update 20"
    assert state["scroll"] == 120
    assert state["morphed"] is None  # no hx-swap of its own: morphed
