from __future__ import annotations

import asyncio

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from reactive_blocks.consumers import ReactiveStreamConsumer
from reactive_blocks.urls import not_found, stream_path, stream_router
from tests.streams_urls import PageStream


def test_stream_path_is_named_and_routes_to_the_consumer():
    pattern = stream_path("live/<int:pk>/", PageStream, name="x")
    assert pattern.name == "x"
    assert pattern.callback.consumer_class is PageStream


def test_stream_path_refuses_other_classes():
    with pytest.raises(
        TypeError, match="takes a ReactiveStreamConsumer subclass, got <class 'object'>"
    ):
        stream_path("live/", object)  # type: ignore[arg-type]


def test_stream_router_needs_a_urlconf():
    with pytest.raises(ImproperlyConfigured, match="needs REACTIVE_BLOCKS"):
        stream_router()


@override_settings(
    REACTIVE_BLOCKS={
        "URLCONF": "tests.streams_urls",
        "BUS": {"BACKEND": "reactive_blocks.ReactiveBus"},
    }
)
def test_stream_router_serves_streams_and_falls_back():
    router = stream_router()
    assert [getattr(r.callback, "consumer_class", None) for r in router.routes][:2] == [
        PageStream,
        PageStream.__subclasses__()[0],
    ]
    assert router.routes[-1].callback is not_found


def test_not_found_is_a_plain_404():
    sent = []

    async def send(message):
        sent.append(message)

    asyncio.run(not_found({"type": "http"}, None, send))
    assert sent[0]["status"] == 404
    assert sent[1]["body"] == b"Not found."


def test_consumer_requires_scope_and_template():
    consumer = ReactiveStreamConsumer()
    with pytest.raises(ImproperlyConfigured, match="must override get_scope"):
        consumer.get_scope()
    with pytest.raises(ImproperlyConfigured, match="needs a template_name"):
        consumer.get_template_name()
