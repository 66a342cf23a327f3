"""{% reactive_scripts %} and {% reactive_connect %}: exact HTML, rendered by Template."""

from __future__ import annotations

import html
import json
import re
from urllib.parse import parse_qs

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.template import Context, Template
from django.test import RequestFactory, override_settings
from django.urls import NoReverseMatch

from reactive_blocks import ChangeEvent, Position, get_bus
from reactive_blocks.origin import verify_origin
from reactive_blocks.streams.tokens import verify_stream

STREAMS = {
    "BUS": {"BACKEND": "reactive_blocks.ReactiveBus"},
    "URLCONF": "tests.streams_urls",
}


def render(source: str, **context) -> str:
    return Template("{% load reactive_blocks %}" + source).render(Context(context))


def request_with_session(key: str | None = "session-key-1"):
    request = RequestFactory().get("/docs/1/")
    request.session = type("Session", (), {"session_key": key})()
    return request


def test_reactive_scripts():
    assert render("{% reactive_scripts %}") == (
        '<script src="/static/reactive_blocks/vendor/htmx.min.js" defer></script>\n'
        '<script src="/static/reactive_blocks/vendor/htmx-ext-sse.js" defer></script>\n'
        '<script src="/static/reactive_blocks/vendor/idiomorph.min.js" defer></script>\n'
        '<script src="/static/reactive_blocks/reactive.js" data-streams="/_reactive/streams/" defer></script>'
    )


@override_settings(REACTIVE_BLOCKS=STREAMS)
def test_reactive_connect_renders_signed_stream_attributes():
    get_bus().emit_sync(ChangeEvent("doc-7", {"doc"}))
    request = request_with_session()
    out = render('<main {% reactive_connect "page-live" pk=7 %}>', request=request)
    match = re.fullmatch(
        r'<main hx-ext="reactive-morph" data-reactive-stream="([^"]+)" data-reactive-close="reactive-close" '
        r'hx-headers="([^"]+)">',
        out,
    )
    assert match, out
    url = html.unescape(match.group(1))
    path, _, query = url.partition("?")
    assert path == "/live/page/7/"
    params = {key: values[0] for key, values in parse_qs(query).items()}
    assert params["since"] == "1"
    claim = json.loads(html.unescape(match.group(2)))["X-Reactive-Connection"]
    connection = verify_origin(claim, "session-key-1")
    token = verify_stream(
        params["token"], path=path, session_key="session-key-1", max_age=60
    )
    assert token.connection_id == connection
    assert len(connection) >= 16


@override_settings(REACTIVE_BLOCKS=STREAMS)
def test_each_render_is_a_new_tab():
    request = request_with_session()
    first = render('{% reactive_connect "page-live" pk=1 %}', request=request)
    second = render('{% reactive_connect "page-live" pk=1 %}', request=request)
    assert first != second


@override_settings(REACTIVE_BLOCKS=STREAMS)
def test_since_is_the_position_when_the_request_began():
    request = request_with_session()
    request.reactive_position = Position("e1e1e1e1", 41)
    out = render('{% reactive_connect "page-live" pk=1 %}', request=request)
    assert "since=41&epoch=e1e1e1e1" in html.unescape(out)


@override_settings(REACTIVE_BLOCKS=STREAMS)
def test_close_event_comes_from_the_consumer():
    out = render('{% reactive_connect "quiet-live" %}', request=request_with_session())
    assert 'data-reactive-close="stop-now"' in out


@override_settings(REACTIVE_BLOCKS=STREAMS)
def test_unknown_stream_name():
    with pytest.raises(
        NoReverseMatch, match="No stream route named 'nope' with arguments"
    ):
        render('{% reactive_connect "nope" %}', request=request_with_session())


@override_settings(REACTIVE_BLOCKS=STREAMS)
def test_request_is_required():
    with pytest.raises(
        ImproperlyConfigured, match="needs the request in the template context"
    ):
        render('{% reactive_connect "page-live" pk=1 %}')


def test_urlconf_setting_is_required():
    with pytest.raises(ImproperlyConfigured, match=r"Set REACTIVE_BLOCKS\['URLCONF'\]"):
        render(
            '{% reactive_connect "page-live" pk=1 %}', request=request_with_session()
        )
