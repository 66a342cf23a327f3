from __future__ import annotations

import asyncio

from django.http import HttpResponse
from django.test import RequestFactory

from reactive_blocks import ChangeEvent, Position, get_bus
from reactive_blocks.origin import ReactiveMiddleware, current_origin, origin


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
    request = RequestFactory().get("/", HTTP_X_REACTIVE_CONNECTION="tab_AbC-12345")
    ReactiveMiddleware(view)(request)
    assert seen == {
        "origin": "tab_AbC-12345",
        "position": Position(get_bus().epoch, 1),
    }
    assert current_origin() is None  # reset after the request


def test_middleware_ignores_malformed_ids():
    for value in ("short", "x" * 65, "has space 123", "semi;colon12"):
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
    request = RequestFactory().get("/", HTTP_X_REACTIVE_CONNECTION="tab-async-123")
    response = asyncio.run(middleware(request))
    assert response.status_code == 200
    assert seen == {"origin": "tab-async-123", "position": get_bus().position()}
