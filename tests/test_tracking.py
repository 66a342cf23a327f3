"""Model tracking on a real database: which saves emit which paths, and when."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import models, transaction
from django.http import HttpResponse
from django.test import RequestFactory
from django.test.utils import isolate_apps

import reactive_blocks
from reactive_blocks import ChangeEvent
from reactive_blocks.middleware import ReactiveMiddleware
from reactive_blocks.origin import origin, sign_origin
from reactive_blocks.testing import capture_events
from reactive_blocks.tracking import trackers
from tests.models import Author, Comment, Document, Tag

pytestmark = pytest.mark.django_db


def changes(events: list[ChangeEvent]) -> list[tuple[str, set[str]]]:
    return [(e.scope, set(e.changed_paths)) for e in events]


@pytest.fixture
def doc() -> Document:
    with capture_events():
        return Document.objects.create(title="Title", content="Body")


def scope(document: Document) -> str:
    return f"doc-{document.pk}"


# Saves ------------------------------------------------------------------------------


def test_create_emits_the_prefix():
    with capture_events() as events:
        document = Document.objects.create(title="New")
    assert changes(events) == [(scope(document), {"doc"})]


def test_update_emits_only_the_fields_that_changed(doc):
    doc.title = "Changed"
    doc.content = "Body"  # assigned, but the same
    with capture_events() as events:
        doc.save()
    assert changes(events) == [(scope(doc), {"doc.title"})]


def test_save_that_changes_nothing_emits_nothing(doc):
    with capture_events() as events:
        doc.save()
    assert events == []


def test_foreign_key_change(doc):
    doc.author = Author.objects.create(name="Ann")
    with capture_events() as events:
        doc.save()
    assert changes(events) == [(scope(doc), {"doc.author"})]


def test_json_field_compares_values(doc):
    doc.meta = {"tags": ["a"]}
    with capture_events() as events:
        doc.save()
    assert changes(events) == [(scope(doc), {"doc.meta"})]
    doc.meta = {"tags": ["a"]}  # a new, equal object
    with capture_events() as events:
        doc.save()
    assert events == []


def test_value_of_another_type_that_is_equal_for_the_field(doc):
    doc.version = "1"  # an IntegerField compares 1 and "1" as equal
    with capture_events() as events:
        doc.save()
    assert events == []


def test_excluded_fields_are_not_emitted(doc):
    doc.secret = "hidden"
    with capture_events() as events:
        doc.save()
    assert events == []


def test_a_change_of_an_access_field_carries_a_recheck_even_when_excluded(doc):
    doc.locked_to = "alice"
    with capture_events() as events:
        doc.save()
    assert [(e.scope, set(e.changed_paths), e.recheck) for e in events] == [
        (scope(doc), {"doc.locked_to"}, True)
    ]
    doc.title = "No access change"
    with capture_events() as events:
        doc.save()
    assert [e.recheck for e in events] == [False]


def test_a_transaction_that_changes_access_rechecks_every_event_of_the_scope(doc):
    with capture_events() as events, transaction.atomic():
        doc.title = "Secret"
        doc.save()
        doc.locked_to = "alice"
        doc.save(update_fields=["locked_to"])
        reactive_blocks.emit(scope(doc), ["notice"], origin="another-tab")
    assert sorted((e.origin or "", e.recheck) for e in events) == [
        ("", True),
        ("another-tab", True),
    ]


def test_deleting_a_model_with_access_fields_rechecks(doc):
    with capture_events() as events:
        doc.delete()
    assert [e.recheck for e in events] == [True]


def test_tracked_update_of_an_access_field_rechecks(doc):
    with capture_events() as events:
        reactive_blocks.tracked_update(Document.objects.all(), locked_to="bob")
    assert [(set(e.changed_paths), e.recheck) for e in events] == [
        ({"doc.locked_to"}, True)
    ]


def test_emit_can_ask_for_a_recheck(doc):
    with capture_events() as events:
        reactive_blocks.emit("doc-7", ["doc.private"], recheck=True)
    assert [e.recheck for e in events] == [True]
    with pytest.raises(TypeError, match="recheck must be a bool, got 'yes'"):
        reactive_blocks.emit("doc-7", ["doc.private"], recheck="yes")


def test_deferred_fields(doc):
    partial = Document.objects.only("title").get(pk=doc.pk)
    with capture_events() as events:
        partial.save()  # Django saves the loaded fields only; none changed
    assert events == []
    partial.title = "From a deferred instance"
    with capture_events() as events:
        partial.save()
    assert changes(events) == [(scope(doc), {"doc.title"})]


def test_refresh_from_db_then_save_emits_nothing(doc):
    Document.objects.filter(pk=doc.pk).update(title="Changed elsewhere")
    doc.refresh_from_db()
    with capture_events() as events:
        doc.save()
    assert events == []


def test_a_row_changed_elsewhere_is_compared_with_the_database(doc):
    Document.objects.filter(pk=doc.pk).update(title="Changed elsewhere")
    with capture_events() as events:
        doc.save()  # writes the old title back: the stored title changes
    assert changes(events) == [(scope(doc), {"doc.title"})]


def test_update_fields_emits_exactly_those(doc):
    with capture_events() as events:
        doc.save(update_fields=["version", "content"])
    assert changes(events) == [(scope(doc), {"doc.version", "doc.content"})]


def test_update_fields_by_attname(doc):
    doc.author = Author.objects.create(name="Ann")
    with capture_events() as events:
        doc.save(update_fields=["author_id"])
    assert changes(events) == [(scope(doc), {"doc.author"})]


def test_delete_emits_the_prefix(doc):
    expected = scope(doc)
    with capture_events() as events:
        doc.delete()
    assert changes(events) == [(expected, {"doc"})]


def test_many_scopes_from_a_callable(doc):
    with capture_events() as events:
        Comment.objects.create(document=doc, body="Hi")
    assert sorted(changes(events)) == [
        ("activity", {"doc.comments"}),
        (scope(doc), {"doc.comments"}),
    ]


def test_class_decorator_tracks():
    with capture_events() as events:
        tag = Tag.objects.create(name="x")
    assert changes(events) == [(f"tag-{tag.pk}", {"tag"})]


# Many-to-many -------------------------------------------------------------------------


@pytest.fixture
def tag() -> Tag:
    with capture_events():
        return Tag.objects.create(name="urgent")


def test_m2m_add_and_remove_emit_on_both_sides(doc, tag):
    expected = [(scope(doc), {"doc.tags"}), (f"tag-{tag.pk}", {"tag.documents"})]
    with capture_events() as events:
        doc.tags.add(tag)
    assert changes(events) == expected
    with capture_events() as events:
        doc.tags.remove(tag)
    assert changes(events) == expected


def test_m2m_from_the_reverse_side(doc, tag):
    with capture_events() as events:
        tag.documents.add(doc)
    assert changes(events) == [
        (f"tag-{tag.pk}", {"tag.documents"}),
        (scope(doc), {"doc.tags"}),
    ]


def test_m2m_clear_from_both_sides(doc, tag):
    with capture_events():
        doc.tags.add(tag)
    with capture_events() as events:
        doc.tags.clear()
    assert changes(events) == [
        (scope(doc), {"doc.tags"}),
        (f"tag-{tag.pk}", {"tag.documents"}),
    ]
    with capture_events():
        doc.tags.add(tag)
    with capture_events() as events:
        tag.documents.clear()
    assert changes(events) == [
        (f"tag-{tag.pk}", {"tag.documents"}),
        (scope(doc), {"doc.tags"}),
    ]


# Transactions -------------------------------------------------------------------------


def test_saves_in_one_transaction_become_one_event(doc):
    with capture_events() as events, transaction.atomic():
        doc.title = "One"
        doc.save()
        doc.content = "Two"
        doc.save()
        doc.save(update_fields=["version"])
    assert changes(events) == [
        (scope(doc), {"doc.title", "doc.content", "doc.version"})
    ]


def test_savepoint_rollback_drops_only_its_changes(doc):
    with capture_events() as events, transaction.atomic():
        doc.title = "Kept"
        doc.save()
        try:
            with transaction.atomic():
                doc.content = "Rolled back"
                doc.save()
                raise RuntimeError("undo")
        except RuntimeError:
            pass
    assert changes(events) == [(scope(doc), {"doc.title"})]


def test_nothing_is_emitted_before_the_commit(doc):
    with capture_events(execute=False) as events:
        doc.title = "Pending"
        doc.save()
    assert events == []


@pytest.mark.django_db(transaction=True)
def test_real_commit_emits_after_commit_and_rollback_emits_nothing():
    with capture_events() as events:
        with transaction.atomic():
            document = Document.objects.create(title="A")
            assert events == []  # not yet: the transaction is open
        assert changes(events) == [(scope(document), {"doc"})]
    with capture_events() as events:
        try:
            with transaction.atomic():
                document.title = "Never"
                document.save()
                raise RuntimeError("rollback")
        except RuntimeError:
            pass
    assert events == []


@pytest.mark.django_db(transaction=True)
def test_autocommit_emits_at_once():
    with capture_events(execute=False) as events:
        document = Document.objects.create(title="Now")
        assert changes(events) == [(scope(document), {"doc"})]


@pytest.mark.django_db(transaction=True)
def test_nested_atomic_blocks_with_real_commits():
    document = Document.objects.create(title="A")
    with capture_events() as events:
        with transaction.atomic():
            with transaction.atomic():
                document.title = "Inner"
                document.save()
            Comment.objects.create(document=document, body="x")
        assert sorted(changes(events)) == [
            ("activity", {"doc.comments"}),
            (scope(document), {"doc.title", "doc.comments"}),
        ]


@pytest.fixture
def emitted():
    """Every event the project's bus emits during the test."""
    seen: list[ChangeEvent] = []
    remove = reactive_blocks.get_bus().add_listener(own_scopes(seen))
    yield seen
    remove()


def _another_apps_callback() -> None:
    raise RuntimeError("another app's on_commit callback failed")


@pytest.mark.django_db(transaction=True)
def test_a_failing_callback_of_another_app_does_not_hold_back_changes(emitted):
    try:
        with transaction.atomic():
            # Registered first: Django stops at it, before ours run.
            transaction.on_commit(_another_apps_callback)
            document = Document.objects.create(title="Committed")
            document.title = "Twice"
            document.save()
    except RuntimeError:
        pass
    # Committed, so sent now: not at this thread's next transaction.
    assert changes(emitted) == [(scope(document), {"doc", "doc.title"})]
    with transaction.atomic():
        document.title = "Later"
        document.save()
    assert changes(emitted)[1:] == [(scope(document), {"doc.title"})]


@pytest.mark.django_db(transaction=True)
def test_a_change_freed_in_another_thread_after_a_failed_hook_is_still_sent(emitted):
    held: list[BaseException] = []
    try:
        with transaction.atomic():
            transaction.on_commit(_another_apps_callback)
            document = Document.objects.create(title="Freed elsewhere")
    except RuntimeError as exc:
        # As under ASGI: the failure is kept, then dropped by another thread
        # (whose own database connection knows nothing of this commit).
        held.append(exc)
    assert emitted == []  # Django's commit loop still holds our callback
    freeing = threading.Thread(target=held.clear)
    freeing.start()
    freeing.join()
    assert changes(emitted) == [(scope(document), {"doc"})]
    with transaction.atomic():  # a clean commit lowers Django's flag again
        document.title = "Clean"
        document.save()


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_stays_unsent_when_its_callback_is_dropped(emitted):
    document = Document.objects.create(title="Kept")
    emitted.clear()
    with transaction.atomic():
        try:
            with transaction.atomic():
                document.title = "Rolled back"
                document.save()
                raise ValueError
        except ValueError:
            pass
        Comment.objects.create(document=document, body="kept")
    assert ("activity", {"doc.comments"}) in changes(emitted)
    assert all("doc.title" not in paths for _, paths in changes(emitted))


# Origin -------------------------------------------------------------------------------


def test_origin_comes_from_the_request(doc):
    def view(request):
        doc.title = "From a tab"
        doc.save()
        return HttpResponse()

    request = RequestFactory().post(
        "/", HTTP_X_REACTIVE_CONNECTION=sign_origin("tab-origin-1", None)
    )
    with capture_events() as events:
        ReactiveMiddleware(view)(request)
    assert [e.origin for e in events] == ["tab-origin-1"]


def test_a_management_command_has_no_origin(doc):
    with capture_events() as events:
        call_command("retitle", doc.pk, "From a command")
    assert [(e.origin, set(e.changed_paths)) for e in events] == [(None, {"doc.title"})]


def test_origin_is_read_when_the_change_happens(doc):
    with capture_events() as events, transaction.atomic(), origin("tab-origin-2"):
        doc.title = "x"
        doc.save()
    assert [e.origin for e in events] == ["tab-origin-2"]


# Manual emit and bulk updates ----------------------------------------------------------


def test_manual_emit_after_commit_with_audience():
    with capture_events() as events, transaction.atomic():
        reactive_blocks.emit("doc-42", {"doc.content"}, audience={7, "8"})
        assert events == []
    assert events == [
        ChangeEvent(
            "doc-42", frozenset({"doc.content"}), audience=frozenset({"7", "8"})
        )
    ]


def test_manual_emit_validates_at_once():
    with pytest.raises(
        TypeError, match="paths must be a collection of strings, not a single str"
    ):
        reactive_blocks.emit("doc-42", "doc.content")
    with pytest.raises(ValueError, match="scope must be a non-empty string"):
        reactive_blocks.emit("", {"doc"})
    with pytest.raises(
        TypeError, match="audience must be a collection of strings, not a single str"
    ):
        reactive_blocks.emit("doc-42", {"doc"}, audience="7")


def test_tracked_update(doc):
    other = Document.objects.create(title="Other")
    with capture_events() as events:
        count = reactive_blocks.tracked_update(
            Document.objects.filter(pk__in=[doc.pk, other.pk]), title="Bulk"
        )
    assert count == 2
    assert sorted(changes(events)) == sorted(
        [(scope(doc), {"doc.title"}), (scope(other), {"doc.title"})]
    )
    assert Document.objects.filter(title="Bulk").count() == 2


def test_tracked_update_needs_a_tracked_model():
    with pytest.raises(ImproperlyConfigured, match="Author is not tracked"):
        reactive_blocks.tracked_update(Author.objects.all(), name="x")


def test_tracked_models_declare_their_paths():
    assert trackers()[Document].emitted_paths() == {
        "doc",
        "doc.title",
        "doc.content",
        "doc.version",
        "doc.author",
        "doc.meta",
        "doc.tags",
    }


# Configuration errors -----------------------------------------------------------------


@isolate_apps("tests")
def test_unknown_access_field():
    class Note(models.Model):
        private = models.BooleanField(default=False)

    with pytest.raises(
        ImproperlyConfigured, match=r"access_fields names unknown field\(s\) 'secret'"
    ):
        reactive_blocks.track(
            Note, scope="note-{pk}", prefix="note", access_fields=["secret"]
        )
    with pytest.raises(ImproperlyConfigured, match="access_fields must be a list"):
        reactive_blocks.track(
            Note, scope="note-{pk}", prefix="note", access_fields="private"
        )


@isolate_apps("tests")
def test_unknown_field_in_scope_format():
    class Note(models.Model):
        board_id = models.IntegerField()

    with pytest.raises(
        ImproperlyConfigured,
        match=r"scope 'note-\{board\}' uses \{board\}, which is not a field of Note",
    ):
        reactive_blocks.track(Note, scope="note-{board}", prefix="note")


@isolate_apps("tests")
def test_scope_callable_returning_a_non_string():
    class Note(models.Model):
        pass

    with pytest.raises(ImproperlyConfigured, match="the scope callable returned 42"):
        reactive_blocks.track(Note, scope=lambda note: 42, prefix="note")


@isolate_apps("tests")
@pytest.mark.parametrize("prefix", ["", "note.", "1note", "no te", "note-x"])
def test_prefix_must_be_a_dotted_identifier(prefix):
    class Note(models.Model):
        pass

    with pytest.raises(ImproperlyConfigured, match="is not a dotted identifier"):
        reactive_blocks.track(Note, scope="note-{pk}", prefix=prefix)


@isolate_apps("tests")
def test_tracking_twice_with_conflicting_options():
    class Note(models.Model):
        pass

    try:
        reactive_blocks.track(Note, scope="note-{pk}", prefix="note")
        reactive_blocks.track(Note, scope="note-{pk}", prefix="note")  # same: fine
        with pytest.raises(
            ImproperlyConfigured,
            match="Note is already tracked with scope='note-\\{pk\\}', prefix='note'",
        ):
            reactive_blocks.track(Note, scope="note-{pk}", prefix="memo")
    finally:
        reactive_blocks.tracking.untrack(Note)


@isolate_apps("tests")
def test_unknown_fields_and_excludes():
    class Note(models.Model):
        text = models.TextField()

    with pytest.raises(
        ImproperlyConfigured,
        match="fields names unknown field\\(s\\) 'txt'; fields are text",
    ):
        reactive_blocks.track(Note, scope="note-{pk}", prefix="note", fields=["txt"])
    with pytest.raises(
        ImproperlyConfigured, match="exclude names unknown field\\(s\\) 'body'"
    ):
        reactive_blocks.track(Note, scope="note-{pk}", prefix="note", exclude=["body"])


def test_track_needs_a_model_class():
    with pytest.raises(
        TypeError, match="track\\(\\) takes a model class, got 'Document'"
    ):
        reactive_blocks.track("Document", scope="doc-{pk}", prefix="doc")


# Found in review -----------------------------------------------------------------------


def test_proxy_and_child_models_are_tracked_through_their_parent():
    from tests.models import ProxyDocument, Report

    with capture_events() as events:
        proxy = ProxyDocument.objects.create(title="p")
        report = Report.objects.create(title="r")
    assert changes(events) == [(scope(proxy), {"doc"}), (scope(report), {"doc"})]
    report.title = "r2"
    proxy_scope = scope(proxy)
    with capture_events() as events:
        report.save()
        proxy.delete()
    assert changes(events) == [(scope(report), {"doc.title"}), (proxy_scope, {"doc"})]


def test_a_hand_built_instance_of_an_existing_row(doc):
    with capture_events() as events:
        Document(pk=doc.pk, title="Rebuilt", content="Body").save()
    assert changes(events) == [(scope(doc), {"doc.title"})]


def test_moving_between_scopes_tells_the_old_scope_too(doc):
    other = Document.objects.create(title="Other")
    comment = Comment.objects.create(document=doc, body="x")
    comment.document = other
    with capture_events() as events:
        comment.save()
    assert sorted(changes(events)) == sorted(
        [
            (scope(other), {"doc.comments.document"}),
            ("activity", {"doc.comments.document"}),
            (scope(doc), {"doc.comments.document"}),
        ]
    )


def test_auto_now_fields_are_reported():
    from tests.models import Stamped

    with capture_events():
        stamped = Stamped.objects.create(title="a")
    stamped.title = "b"
    with capture_events() as events:
        stamped.save()
    assert changes(events) == [(f"stamped-{stamped.pk}", {"st.title", "st.updated_at"})]


def test_a_failed_save_leaves_nothing_for_the_next(doc):
    from django.db.models.signals import pre_save

    def refuse(sender, instance, **kwargs):
        raise ValueError("refused")

    pre_save.connect(refuse, sender=Document, dispatch_uid="refuse-once")
    doc.title = "never saved"
    try:
        with pytest.raises(ValueError, match="refused"):
            doc.save()
    finally:
        pre_save.disconnect(sender=Document, dispatch_uid="refuse-once")
    with capture_events() as events:
        doc.save(update_fields=["content"])
    assert changes(events) == [(scope(doc), {"doc.content"})]


def test_excluded_m2m_field_is_not_emitted_but_the_other_side_is():
    from tests.models import Shelf

    with capture_events():
        shelf, label = Shelf.objects.create(), Tag.objects.create(name="l")
    with capture_events() as events:
        shelf.labels.add(label)
    assert changes(events) == [(f"tag-{label.pk}", {"tag.shelves"})]


def test_symmetrical_m2m_to_self_tells_both_people():
    from tests.models import Person

    with capture_events():
        ann, bob = Person.objects.create(name="Ann"), Person.objects.create(name="Bob")
    with capture_events() as events:
        ann.friends.add(bob)
    assert changes(events) == [
        (f"person-{ann.pk}", {"person.friends"}),
        (f"person-{bob.pk}", {"person.friends"}),
    ]


def test_deleting_one_side_tells_the_other(doc, tag):
    with capture_events():
        doc.tags.add(tag)
    tag_scope = f"tag-{tag.pk}"
    with capture_events() as events:
        tag.delete()
    assert changes(events) == [(tag_scope, {"tag"}), (scope(doc), {"doc.tags"})]


def test_tracked_update_by_attname(doc):
    author = Author.objects.create(name="Ann")
    with capture_events() as events:
        reactive_blocks.tracked_update(
            Document.objects.filter(pk=doc.pk), author_id=author.pk
        )
    assert changes(events) == [(scope(doc), {"doc.author"})]


@isolate_apps("tests")
@pytest.mark.parametrize("bad", ["doc-{pk!x}", "doc-{title:d}", "doc-{", "all-docs"])
def test_bad_format_strings_fail_at_start_up(bad):
    class Note(models.Model):
        title = models.CharField(max_length=10)

    with pytest.raises(ImproperlyConfigured, match="scope"):
        reactive_blocks.track(Note, scope=bad, prefix="note")


def test_a_scope_that_comes_out_empty_never_breaks_the_save(caplog):
    from tests.models import Stamped

    with capture_events():
        stamped = Stamped.objects.create(title="x")
    tracker = trackers()[Stamped]
    with capture_events() as events:
        # A callable scope that yields "" for this instance: logged, save unharmed.
        object.__setattr__(tracker, "scope", lambda s: "")
        try:
            stamped.title = "y"
            stamped.save()
        finally:
            object.__setattr__(tracker, "scope", "stamped-{pk}")
    assert events == []
    assert "it must be a non-empty str" in caplog.text


def test_djangos_own_capture_after_an_earlier_pending_change(doc):
    from django.test import TestCase

    doc.title = "pending, never run"
    doc.save()  # its callback waits for a commit that never comes
    seen = []
    remove = reactive_blocks.get_bus().add_listener(own_scopes(seen))
    try:
        with TestCase.captureOnCommitCallbacks(execute=True):
            doc.content = "captured"
            doc.save()
    finally:
        remove()
    assert changes(seen) == [(scope(doc), {"doc.content"})]


@pytest.mark.django_db(transaction=True)
def test_capture_inside_a_committing_transaction_does_not_double_emit():
    document = Document.objects.create(title="A")
    seen = []
    remove = reactive_blocks.get_bus().add_listener(own_scopes(seen))
    try:
        with transaction.atomic(), capture_events() as events:
            document.title = "B"
            document.save()
        assert len(events) == 1
    finally:
        remove()
    assert changes(seen) == [(scope(document), {"doc.title"})]


def own_scopes(seen):
    """A listener keeping the events of the scopes track() was given (not the
    scopes live pages follow)."""
    from reactive_blocks.tracking.registry import is_page_scope_only

    def listen(event):
        if not is_page_scope_only(event.scope):
            seen.append(event)

    return listen


@pytest.mark.django_db
def test_a_row_moved_to_another_parent_reaches_both_parents_pages():
    from tests.models import Note, Remark

    first, second = Note.objects.create(title="a"), Note.objects.create(title="b")
    remark = Remark.objects.create(note=first, text="moving")
    with capture_events(page_scopes=True) as events:
        remark.note = second
        remark.save()
    scopes = {e.scope for e in events}
    assert {f"tests.note:{first.pk}", f"tests.note:{second.pk}"} <= scopes
    # Saved in place, only its own parent's page hears of it.
    with capture_events(page_scopes=True) as events:
        remark.text = "stays"
        remark.save()
    assert f"tests.note:{first.pk}" not in {e.scope for e in events}
