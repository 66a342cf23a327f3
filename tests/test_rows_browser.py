"""Keyed rows in Chromium: a live list sent a row at a time ends up exactly as a
fresh render of the page, whatever creates, updates, deletes and reorders came."""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING

import pytest

from tests.browser import chromium
from tests.test_pages import Site, pages_site

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.timeout(240)

# The list's rows as the DOM has them, and as a fresh render of the page would.
SHOWN = """() => [...document.querySelector('#list').children].map(
    (e) => e.outerHTML.replace(/>\\s+</g, '><').trim()).join('')"""
FRESH = """() => fetch(location.href).then((r) => r.text()).then((text) => {
    const page = new DOMParser().parseFromString(text, 'text/html');
    return [...page.querySelector('#list').children].map(
        (e) => e.outerHTML.replace(/>\\s+</g, '><').trim()).join('');
})"""
COUNT = """() => { window.messages = {rows: 0, whole: 0};
    document.addEventListener('htmx:sseMessage', (e) => {
        window.messages[e.detail.rows ? 'rows' : 'whole'] += 1; }); }"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with pages_site(tmp_path_factory.mktemp("rows"), PAGES_DEBUG="1") as site:
        yield site


def converged(page) -> None:
    """Wait until the list shows what a fresh render shows (compared in the page)."""
    page.wait_for_function(
        f"async () => ({SHOWN})() === await ({FRESH})()", timeout=20_000, polling=200
    )


LIVE = '[data-reactive-stream][data-reactive-state="live"]'
PAGES = {"live page": "/keyed/", "stream class": "/keyed-stream/"}


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("path", PAGES.values(), ids=PAGES.keys())
def test_random_changes_leave_the_list_as_a_fresh_render(
    site: Site, seed: int, path: str
):
    rng = random.Random(seed)
    notes = [site.post("/create/", {"title": f"n{n:02}"})["pk"] for n in range(12)]
    with chromium() as browser:
        page = browser.new_page()
        warnings = []
        page.on(
            "console",
            lambda m: warnings.append(m.text) if m.type == "warning" else None,
        )
        page.goto(site.url + path)
        page.wait_for_selector(LIVE)
        page.evaluate(COUNT)
        for step in range(40):
            action = rng.choice(["create", "update", "update", "reorder", "delete"])
            if action == "create" or not notes:
                notes.append(
                    site.post("/create/", {"title": f"c{rng.randint(0, 99):02}"})["pk"]
                )
            elif action == "update":
                site.post(f"/save/{rng.choice(notes)}/", {"body": f"body {step}"})
            elif action == "reorder":
                site.post(
                    f"/save/{rng.choice(notes)}/",
                    {"title": f"r{rng.randint(0, 99):02}"},
                )
            else:
                site.post(f"/delete/{notes.pop(rng.randrange(len(notes)))}/", {})
            if step % 8 == 7:
                converged(page)
        converged(page)
        messages = page.evaluate("() => window.messages")
    # The rows always applied: the page never had to fetch the list whole.
    assert warnings == []
    # Rows, not whole lists, did the work (the first change after the page opened
    # is sent whole: the server learns the rows the page shows from it).
    assert messages["rows"] > messages["whole"], messages


@pytest.mark.parametrize("path", PAGES.values(), ids=PAGES.keys())
def test_a_change_to_one_row_renders_and_sends_that_row(site: Site, path: str):
    """1 row rendered, a few hundred bytes: not the whole list again."""
    pks = [site.post("/create/", {"title": f"m{n:03}"})["pk"] for n in range(100)]
    with chromium() as browser:
        page = browser.new_page()
        page.goto(site.url + path)
        page.wait_for_selector(LIVE)
        page.evaluate(COUNT)
        site.post(f"/save/{pks[0]}/", {"body": "warm-up"})  # the server learns the rows
        page.wait_for_function("() => window.messages.whole === 1")
        before = json.loads(site.get("/stats/")[2])
        page.evaluate(
            """() => document.addEventListener('htmx:sseMessage',
                (e) => { window.lastRows = e.detail.rows; })"""
        )
        site.post(f"/save/{pks[50]}/", {"body": "only this one"})
        page.wait_for_function("() => window.messages.rows === 1")
        after = json.loads(site.get("/stats/")[2])
        patch = page.evaluate("() => window.lastRows")
    assert after["rows"] - before["rows"] == 1
    assert after["renders"] - before["renders"] == 0  # no whole block rendered
    assert [put["id"] for put in patch["put"]] == [f"note-{pks[50]}"]
    assert "only this one" in patch["put"][0]["html"]


@pytest.mark.parametrize("path", PAGES.values(), ids=PAGES.keys())
def test_a_tab_that_opens_after_the_rows_were_learnt_gets_rows_at_once(
    site: Site, path: str
):
    pks = [site.post("/create/", {"title": f"t{n:02}"})["pk"] for n in range(10)]
    with chromium() as browser:
        first = browser.new_context().new_page()
        first.goto(site.url + path)
        first.wait_for_selector(LIVE)
        first.evaluate(COUNT)
        site.post(f"/save/{pks[0]}/", {"body": "learnt"})
        first.wait_for_function("() => window.messages.whole === 1")
        second = first.context.new_page()  # a tab of the same browser
        second.goto(site.url + path)
        second.wait_for_selector(LIVE)
        second.evaluate(COUNT)
        site.post(f"/save/{pks[1]}/", {"body": "the second tab's first change"})
        second.wait_for_function(
            "() => window.messages.rows + window.messages.whole > 0"
        )
        assert second.evaluate("() => window.messages") == {"rows": 1, "whole": 0}
        converged(second)
