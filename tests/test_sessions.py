"""A session that ends takes its streams: Django's logout signal and the middleware."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.contrib.auth.signals import user_logged_out
from django.contrib.sessions.backends.db import SessionStore
from django.http import HttpResponse
from django.test import RequestFactory

from reactive_blocks import CloseReason, ConnectionInfo, get_bus
from reactive_blocks.identity import session_digest
from reactive_blocks.middleware import ReactiveMiddleware


def watching(session_key: str, number: int):
    connection = ConnectionInfo(
        f"tab-{number:08d}", "7", session=session_digest(session_key)
    )
    return get_bus().subscribe("doc-1", connection)


def test_logging_out_ends_the_streams_of_that_session_only():
    mine, other = watching("key-a", 1), watching("key-b", 2)
    request = SimpleNamespace(session=SimpleNamespace(session_key="key-a"))
    user_logged_out.send(sender=None, request=request, user=None)
    assert mine.close_reason is CloseReason.USER_CLOSED
    assert other.close_reason is None  # the same user, in another browser
    other.close()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "ends"),
    [("flush", True), ("cycle_key", True), ("nothing", False)],
)
def test_the_middleware_ends_the_streams_of_a_flushed_session(change, ends):
    session = SessionStore()
    session["cart"] = 1
    session.save()
    key = session.session_key
    stream = watching(key, 3)

    def view(request):
        if change != "nothing":
            getattr(request.session, change)()
        return HttpResponse()

    request = RequestFactory().get("/")
    request.session = SessionStore(key)
    ReactiveMiddleware(view)(request)
    assert (stream.close_reason is CloseReason.USER_CLOSED) is ends
    stream.close()


@pytest.mark.django_db
def test_a_cookie_naming_no_session_ends_nothing():
    stream = watching("gone-key", 4)

    def view(request):
        request.session.get("anything")  # loading it drops the unknown key
        return HttpResponse()

    request = RequestFactory().get("/")
    request.session = SessionStore("gone-key")
    ReactiveMiddleware(view)(request)
    assert stream.close_reason is None
    stream.close()
