"""Changes name their rows (ChangeEvent.rows): set by tracked saves, merged per
transaction, carried by every bus, left out of equality."""

from __future__ import annotations

import pytest
from django.db import transaction

import reactive_blocks
from reactive_blocks import ChangeEvent
from reactive_blocks.bus import database, wire
from reactive_blocks.testing import capture_events
from tests.models import Comment, Document

pytestmark = pytest.mark.django_db(transaction=True)


def test_rows_are_frozen_and_a_bare_string_is_refused():
    assert ChangeEvent("s", {"a"}, rows=["app.m:1"]).rows == frozenset({"app.m:1"})
    with pytest.raises(TypeError, match="rows must be a collection of strings"):
        ChangeEvent("s", {"a"}, rows="app.m:1")


def test_an_event_equals_one_written_without_its_rows():
    assert ChangeEvent("s", {"a"}, rows={"app.m:1"}) == ChangeEvent("s", {"a"})


@pytest.mark.parametrize(
    "rows", [None, frozenset({"tests.document:4", "tests.document:5"})]
)
def test_the_buses_carry_rows(rows):
    event = ChangeEvent("doc-4", {"doc.title"}, rows=rows)
    decoded, published_at = database._decode("doc-4", database._encode(event))
    assert decoded is not None
    assert decoded.rows == rows
    assert published_at is not None
    envelope = (
        f'{{"v":{wire.VERSION},"kind":"event","epoch":"e","rev":2,"prev":1,'
        f'"event":{wire.event_payload(event)}}}'
    )
    assert wire.parse_published(envelope, "doc-4").event.rows == rows


def test_a_tracked_save_names_its_row_on_every_scope():
    with capture_events(page_scopes=True) as events:
        doc = Document.objects.create(title="a")
    row = f"tests.document:{doc.pk}"
    assert events
    assert {e.rows for e in events} == {frozenset({row})}


def test_a_comment_names_its_own_row_on_its_documents_scope():
    doc = Document.objects.create(title="a")
    with capture_events(page_scopes=True) as events:
        comment = Comment.objects.create(document=doc, body="hi")
    parent = next(e for e in events if e.scope == f"tests.document:{doc.pk}")
    assert parent.rows == frozenset({f"tests.comment:{comment.pk}"})


def test_rows_of_one_transaction_are_merged_and_an_unnamed_change_makes_them_unknown():
    with capture_events(page_scopes=True) as events, transaction.atomic():
        first = Document.objects.create(title="a")
        second = Document.objects.create(title="b")
    table = next(e for e in events if e.scope == "tests.document")
    assert table.rows == {f"tests.document:{first.pk}", f"tests.document:{second.pk}"}
    with capture_events(page_scopes=True) as events, transaction.atomic():
        first.title = "c"
        first.save()
        reactive_blocks.emit("tests.document", {"doc.title"}, origin=None)
    table = next(e for e in events if e.scope == "tests.document")
    assert table.rows is None


def test_emit_takes_rows():
    with capture_events() as events:
        reactive_blocks.emit("list", {"doc.title"}, rows=["tests.document:9"])
    assert events[0].rows == frozenset({"tests.document:9"})
    with pytest.raises(TypeError, match="rows must be a collection of strings"):
        reactive_blocks.emit("list", {"doc.title"}, rows="tests.document:9")
