"""Rendering a keyed block (rows/render.py): a change to one item renders one row."""

from __future__ import annotations

import json

import pytest

from reactive_blocks.rendering import render_block
from reactive_blocks.rows.render import Keyed, RowsPlan, render_keyed, row_identity
from tests.models import Author, Document

pytestmark = pytest.mark.django_db

TEMPLATE = "rows/list.html"


def context(heading: str = "Documents") -> dict:
    return {"heading": heading, "docs": Document.objects.order_by("title")}


def rows_of(*documents: Document) -> frozenset[str]:
    return frozenset(row_identity(d) for d in documents)


def first_render() -> Keyed:
    keyed = render_keyed(TEMPLATE, "docs", context(), RowsPlan(None, None, False))
    assert isinstance(keyed, Keyed)
    return keyed


@pytest.fixture
def docs() -> list[Document]:
    return [Document.objects.create(title=t) for t in ("a", "b", "c")]


def test_a_first_render_is_the_whole_block_and_its_rows(docs):
    keyed = first_render()
    assert keyed.full == render_block(TEMPLATE, "docs", context())
    assert keyed.keys == tuple(f"doc-{d.pk}" for d in docs)
    assert keyed.message_for(None) == keyed.full


def test_one_changed_item_renders_and_sends_its_row_alone(docs):
    base = first_render()
    docs[1].version = 7
    docs[1].save()
    keyed = render_keyed(
        TEMPLATE, "docs", context(), RowsPlan(base, rows_of(docs[1]), False)
    )
    assert isinstance(keyed, Keyed)
    assert keyed.rows_rendered == 1
    assert keyed.full is None  # nobody needs the whole block
    message = json.loads(keyed.message_for(base))
    assert message == {
        "block": "docs",
        "put": [
            {
                "id": f"doc-{docs[1].pk}",
                "html": f'<li id="doc-{docs[1].pk}"><b>b</b> v7</li>',
            }
        ],
    }
    # A page that shows something else gets nothing it cannot apply.
    assert keyed.message_for(None) is None


def test_a_page_that_needs_the_whole_block_gets_it_beside_the_rows(docs):
    base = first_render()
    keyed = render_keyed(
        TEMPLATE, "docs", context(), RowsPlan(base, rows_of(docs[0]), True)
    )
    assert keyed.full == render_block(TEMPLATE, "docs", context())
    # The row named was rendered, and sent: the first render knew no row's HTML.
    assert keyed.rows_rendered == 1
    assert json.loads(keyed.message_for(base))["put"][0]["id"] == f"doc-{docs[0].pk}"
    # Named again, unchanged, it is not sent again.
    again = render_keyed(
        TEMPLATE, "docs", context(), RowsPlan(keyed, rows_of(docs[0]), False)
    )
    assert again.rows_rendered == 1
    assert again.message_for(keyed) is None


def test_a_new_and_a_deleted_item_are_put_and_removed(docs):
    base = first_render()
    created = Document.objects.create(title="bb")
    gone = docs[2].pk
    docs[2].delete()
    keyed = render_keyed(
        TEMPLATE, "docs", context(), RowsPlan(base, rows_of(created), False)
    )
    message = json.loads(keyed.message_for(base))
    assert message["remove"] == [f"doc-{gone}"]
    assert message["put"] == [
        {
            "id": f"doc-{created.pk}",
            "after": f"doc-{docs[1].pk}",
            "html": f'<li id="doc-{created.pk}"><b>bb</b> v1</li>',
        }
    ]
    assert keyed.rows_rendered == 1


def test_a_reorder_moves_rows_without_rendering_them(docs):
    base = first_render()
    docs[0].title = "z"
    docs[0].save()
    keyed = render_keyed(
        TEMPLATE, "docs", context(), RowsPlan(base, rows_of(docs[0]), False)
    )
    message = json.loads(keyed.message_for(base))
    assert message["put"] == [
        {
            "id": f"doc-{docs[0].pk}",
            "after": f"doc-{docs[2].pk}",
            "html": f'<li id="doc-{docs[0].pk}"><b>z</b> v1</li>',
        }
    ]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (
            lambda docs: ({"heading": "Other"}, None),
            "the block changed outside its loop",
        ),
        (lambda docs: ({}, "unknown"), "the change does not name its rows"),
    ],
)
def test_otherwise_the_whole_block_is_sent(docs, change, why):
    base = first_render()
    extra, rows = change(docs)
    data = {**context(), **extra}
    plan = RowsPlan(base, None if rows == "unknown" else rows_of(docs[0]), False)
    keyed = render_keyed(TEMPLATE, "docs", data, plan)
    assert keyed.full == render_block(TEMPLATE, "docs", data), why
    assert keyed.message_for(base) == keyed.full


def test_rows_of_items_that_are_not_tracked_are_rendered_at_every_change():
    authors = [Author.objects.create(name=n) for n in "xy"]
    assert row_identity(authors[0]) is None
    assert row_identity(Document(title="unsaved")) is None


def test_a_block_without_a_keyed_loop_renders_as_any_block(docs):
    out = render_keyed(TEMPLATE, "plain", context(), RowsPlan(None, None, False))
    assert out == render_block(TEMPLATE, "plain", context())


def test_a_change_to_a_row_of_another_model_sends_the_whole_block(docs):
    """A comment of a listed document changed (its row may show a count of
    them): which rows show it is not known, so the block goes whole."""
    base = first_render()
    rows = frozenset({"tests.comment:9"})
    keyed = render_keyed(TEMPLATE, "docs", context(), RowsPlan(base, rows, False))
    assert keyed.full == render_block(TEMPLATE, "docs", context())
    assert keyed.message_for(base) == keyed.full
