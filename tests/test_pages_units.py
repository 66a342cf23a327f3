"""The pure parts of live pages: what a page follows, its token, which browser."""

from __future__ import annotations

import pytest
from django.core.paginator import Paginator
from django.forms import ModelForm

from reactive_blocks.identity import session_digest
from reactive_blocks.pages.follows import MAX_FOLLOWED, follows
from reactive_blocks.pages.hub import browser_of
from reactive_blocks.pages.tokens import PageToken, sign_page, verify_page
from reactive_blocks.streams.tokens import InvalidStreamToken
from tests.models import Author, Note


class NoteForm(ModelForm):
    class Meta:
        model = Note
        fields = ("title",)


def test_an_instance_follows_its_row_and_a_queryset_its_model():
    note = Note(pk=3)
    assert follows({"note": note, "notes": Note.objects.all()}) == [
        "tests.note:3",
        "tests.note",
    ]


def test_lists_and_forms_count_for_what_they_hold():
    assert follows({"notes": [Note(pk=1), Note(pk=2)]}) == ["tests.note"]
    assert follows({"form": NoteForm(instance=Note(pk=5))}) == ["tests.note:5"]


@pytest.mark.django_db
def test_a_paginator_page_follows_its_model():
    page = Paginator(Note.objects.order_by("pk"), 10).page(1)
    assert follows({"page_obj": page}) == ["tests.note"]
    listed = Paginator([Note(pk=1), Note(pk=2)], 10).page(1)
    assert follows({"page_obj": listed}) == ["tests.note"]


def test_untracked_models_and_unsaved_rows_are_not_followed():
    assert follows({"author": Author(pk=1), "draft": Note(), "n": 3, "s": "x"}) == []


def test_a_row_whose_pk_no_scope_can_name_follows_its_model():
    assert follows({"note": Note(pk="a b")}) == ["tests.note"]
    assert follows({"note": Note(pk="x" * 300)}) == ["tests.note"]


def test_too_many_rows_follow_their_model_instead():
    context = {f"n{i}": Note(pk=i) for i in range(MAX_FOLLOWED + 1)}
    assert follows(context) == ["tests.note"]


def token(**changes: object) -> PageToken:
    values = {
        "path": "/notes/1/",
        "query": "a=1",
        "view": "tests.pages_site.views.note",
        "template": "pages_site/note.html",
        "connection_id": "tab-1",
        "session_digest": session_digest("session-a"),
        "follows": ("tests.note:1",),
    }
    return PageToken(**{**values, **changes})  # type: ignore[arg-type]


def test_a_token_round_trips_for_its_session():
    signed = sign_page(token())
    assert verify_page(signed, session_key="session-a", max_age=60) == token()


@pytest.mark.parametrize(
    ("signed", "session", "message"),
    [
        (None, "session-a", "carries no token"),
        ("garbage", "session-a", "not valid"),
        ("tampered", "session-a", "not valid"),
        ("good", "session-b", "another session"),
    ],
)
def test_a_bad_token_is_refused_saying_why(signed, session, message):
    good = sign_page(token())
    value = {"good": good, "tampered": good[:-2] + "xx"}.get(signed, signed)
    with pytest.raises(InvalidStreamToken, match=message):
        verify_page(value, session_key=session, max_age=60)


def scope(cookie: str, **headers: str) -> dict[str, object]:
    pairs = [(b"cookie", cookie.encode())] if cookie else []
    pairs += [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return {"headers": pairs, "client": ("127.0.0.1", 50000)}


def test_tabs_of_one_browser_share_a_rerun_and_no_two_browsers_do():
    one = browser_of(scope("sessionid=a; csrftoken=c", user_agent="Firefox"))
    # Another tab: another port, its own Last-Event-ID and referer.
    tab = scope("sessionid=a; csrftoken=c", user_agent="Firefox", last_event_id="7")
    tab["client"] = ("127.0.0.1", 50001)
    tab["headers"].append((b"referer", b"http://x/notes/1/?tab=2"))
    assert browser_of(tab) == one
    # Without a session or a CSRF cookie, browsers still differ by what the view
    # could read of them: other cookies, authorization, their address.
    assert browser_of(scope("cart=1")) != browser_of(scope("cart=2"))
    assert browser_of(scope("", authorization="Basic YTpi")) != browser_of(scope(""))
    other = scope("")
    other["client"] = ("10.0.0.2", 50000)
    assert browser_of(other) != browser_of(scope(""))
    assert one != browser_of(scope("sessionid=b; csrftoken=c", user_agent="Firefox"))
