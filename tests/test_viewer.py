"""What one connection needs after a batch, and what it is sent (pure logic)."""

from __future__ import annotations

import pytest

from reactive_blocks import BlockRef, ChangeEvent
from reactive_blocks.streams.viewer import EVERYTHING, Viewer, behind

TITLE = BlockRef("page.html", "title")
BODY = BlockRef("page.html", "body")


def affected(paths):
    return [
        ref for ref, path in ((TITLE, "doc.title"), (BODY, "doc.body")) if path in paths
    ]


def event(*paths, **kwargs):
    return ChangeEvent("doc-1", frozenset(paths), **kwargs)


def test_a_change_needs_its_paths():
    viewer = Viewer("tab-1", "7")
    assert viewer.need([event("doc.title"), event("doc.body")], False, affected) == {
        "doc.title",
        "doc.body",
    }


def test_its_own_change_needs_nothing_and_forgets_what_was_sent():
    viewer = Viewer("tab-1", "7")
    viewer.last_sent[TITLE] = "<old>"
    assert viewer.need([event("doc.title", origin="tab-1")], False, affected) is None
    assert TITLE not in viewer.last_sent  # the next render of it is sent, whatever


def test_a_change_for_someone_else_is_not_seen():
    viewer = Viewer("tab-1", "7")
    assert viewer.need([event("note", audience={"8"})], False, affected) is None
    assert viewer.need([event("note", audience={"7"})], False, affected) == {"note"}
    assert (
        Viewer("tab-2", None).need([event("note", audience={"7"})], False, affected)
        is None
    )


def test_a_loss_or_a_pending_resync_needs_everything_once():
    viewer = Viewer("tab-1", None, resync=True)
    assert viewer.need([], False, affected) is EVERYTHING
    assert viewer.need([], False, affected) is None
    assert viewer.need([], True, affected) is EVERYTHING


def test_only_what_differs_from_what_it_shows_is_chosen():
    viewer = Viewer("tab-1", None)
    assert viewer.choose([TITLE, BODY], {TITLE: "a", BODY: "b"}) == [
        (TITLE, "a"),
        (BODY, "b"),
    ]
    assert viewer.choose([TITLE, BODY], {TITLE: "a", BODY: "c"}) == [(BODY, "c")]
    assert viewer.choose([TITLE], {}) == []  # a block that failed to render is left out


@pytest.mark.parametrize(
    ("cursor", "epoch", "revision", "latest", "expected"),
    [
        (None, None, 9, 9, False),  # a page that gave no position
        (5, "e1", 5, 9, False),  # nothing changed in its scope since
        (5, "e1", 6, 9, True),  # its scope changed after it
        (5, "e0", 5, 9, True),  # another history (a restart)
        (12, "e1", 5, 9, True),  # ahead of this bus: unknown history
        (12, "e1", 5, None, False),  # ... unless the bus's sequence is not known here
    ],
)
def test_a_page_is_behind_when_it_may_lack_changes(
    cursor, epoch, revision, latest, expected
):
    assert (
        behind(cursor, epoch, current_epoch="e1", revision=revision, latest=latest)
        is expected
    )
