from __future__ import annotations

import asyncio

from django.http import HttpResponse
from django.test import RequestFactory

from reactive_blocks import ChangeEvent, Position, get_bus
from reactive_blocks.identity import public_id
from reactive_blocks.middleware import ReactiveMiddleware
from reactive_blocks.origin import (
    current_origin,
    origin,
    sign_origin,
    verify_origin,
)


def test_origin_context_manager():
    assert current_origin() is None
    with origin("tab-12345678"):
        assert current_origin() == "tab-12345678"
    assert current_origin() is None


def seen_by_view():
    seen = {}

    def view(request):
        seen["origin"] = current_origin()
        seen["position"] = request.reactive_position
        return HttpResponse()

    return seen, view


def test_middleware_sets_origin_from_header_and_records_position():
    get_bus().emit_sync(ChangeEvent("doc-1", {"a"}))
    seen, view = seen_by_view()
    request = RequestFactory().get(
        "/", HTTP_X_REACTIVE_CONNECTION=sign_origin("tab_AbC-12345", None)
    )
    ReactiveMiddleware(view)(request)
    assert seen == {
        "origin": "tab_AbC-12345",
        "position": Position(get_bus().epoch, 1),
    }
    assert current_origin() is None  # reset after the request


def test_middleware_ignores_malformed_ids():
    signature = sign_origin("tab_AbC-12345", None).split(".")[1]
    for value in (
        "short",
        "x" * 65,
        "has space 123",
        "semi;colon12",
        f"short.{signature}",
        "tab_AbC-12345." + "0" * 32,
        "tab_AbC-12345",
        "9" * 5000,
    ):
        seen, view = seen_by_view()
        ReactiveMiddleware(view)(
            RequestFactory().get("/", HTTP_X_REACTIVE_CONNECTION=value)
        )
        assert seen["origin"] is None


def test_middleware_without_header():
    seen, view = seen_by_view()
    ReactiveMiddleware(view)(RequestFactory().get("/"))
    assert seen["origin"] is None


def test_async_middleware():
    seen = {}

    async def view(request):
        seen["origin"] = current_origin()
        seen["position"] = request.reactive_position
        return HttpResponse()

    middleware = ReactiveMiddleware(view)
    request = RequestFactory().get(
        "/", HTTP_X_REACTIVE_CONNECTION=sign_origin("tab-async-123", None)
    )
    response = asyncio.run(middleware(request))
    assert response.status_code == 200
    assert seen == {"origin": "tab-async-123", "position": get_bus().position()}


def test_an_origin_is_bound_to_the_session_it_was_signed_for():
    alices = sign_origin("alices-tab-1", "alice-session")
    assert verify_origin(alices, "alice-session") == "alices-tab-1"
    # Bob knows the id (it is in the signed, not encrypted, stream token) and
    # even Alice's header value: neither silences her tab from his session.
    assert verify_origin(alices, "bob-session") is None
    assert verify_origin(alices, None) is None
    assert verify_origin(sign_origin("alices-tab-1", "bob-session"), "x") is None
    assert verify_origin("alices-tab-1", "alice-session") is None


def test_a_page_rendered_without_a_session_keeps_its_origin_once_it_has_one():
    claim = sign_origin("first-visit-1", None)
    assert verify_origin(claim, None) == "first-visit-1"
    assert verify_origin(claim, "session-made-later") == "first-visit-1"


def test_the_public_id_in_presence_is_no_origin():
    shown = public_id("alices-tab-1")
    assert shown != "alices-tab-1"
    assert public_id("alices-tab-1") == shown  # stable: presence lists it once
    assert verify_origin(shown, "any") is None
    assert verify_origin(f"{shown}.{'0' * 32}", "any") is None


def test_the_old_import_path_of_the_middleware_still_works_and_says_where_it_went():
    import warnings

    import reactive_blocks.origin

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        moved = reactive_blocks.origin.ReactiveMiddleware
    assert moved is ReactiveMiddleware
    (warning,) = caught
    assert warning.category is DeprecationWarning
    assert "reactive_blocks.middleware.ReactiveMiddleware" in str(warning.message)
