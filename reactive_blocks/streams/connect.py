"""The HTML that makes a page live: the scripts, and the attributes opening a stream."""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.core.exceptions import ImproperlyConfigured
from django.templatetags.static import static
from django.urls import NoReverseMatch, resolve, reverse
from django.utils.html import format_html, format_html_join

from reactive_blocks.bus.subscription import Position
from reactive_blocks.conf import conf
from reactive_blocks.origin import HEADER, sign_origin
from reactive_blocks.runtime import get_bus
from reactive_blocks.streams.tokens import sign_stream

if TYPE_CHECKING:
    from django.http import HttpRequest
    from django.utils.safestring import SafeString

__all__ = ["connect_attributes", "scripts", "stream_url"]

SCRIPTS = (
    "reactive_blocks/vendor/htmx.min.js",
    "reactive_blocks/vendor/htmx-ext-sse.js",
    "reactive_blocks/vendor/idiomorph.min.js",
    "reactive_blocks/reactive.js",
)
DEFAULT_CLOSE_EVENT = "reactive-close"


def scripts() -> SafeString:
    """``<script>`` tags for htmx, its SSE extension, idiomorph and reactive_blocks'
    client, which opens the page's streams in one connection at ``STREAMS_PATH``."""
    *vendored, client = SCRIPTS
    return format_html(
        '{}\n<script src="{}" data-streams="{}" defer></script>',
        format_html_join(
            "\n", '<script src="{}" defer></script>', ((static(p),) for p in vendored)
        ),
        static(client),
        conf.STREAMS_PATH,
    )


def stream_url(
    request: HttpRequest | None, name: str, **kwargs: Any
) -> tuple[str, str, str]:
    """The signed URL of stream route ``name``: (url, connection id, close event)."""
    if request is None:
        raise ImproperlyConfigured(
            "{% reactive_connect %} needs the request in the template context: add "
            "'django.template.context_processors.request' to the template engine's "
            "context_processors, or render with a RequestContext."
        )
    urlconf = conf.URLCONF
    if urlconf is None:
        raise ImproperlyConfigured(
            "Set REACTIVE_BLOCKS['URLCONF'] to the module whose urlpatterns hold your "
            "stream_path() routes, e.g. 'myproject.streams'."
        )
    try:
        path = reverse(name, urlconf=urlconf, kwargs=kwargs)
    except NoReverseMatch as exc:
        raise NoReverseMatch(
            f"No stream route named {name!r} with arguments {kwargs!r} in {urlconf}."
        ) from exc
    connection_id = secrets.token_urlsafe(12)
    session = getattr(request, "session", None)
    token = sign_stream(path, connection_id, getattr(session, "session_key", None))
    # The bus position when the request began (ReactiveMiddleware), else now.
    position = getattr(request, "reactive_position", None)
    if not isinstance(position, Position):
        position = get_bus().position()
    query = urlencode(
        {"token": token, "since": position.sequence, "epoch": position.epoch}
    )
    consumer = getattr(resolve(path, urlconf=urlconf).func, "consumer_class", None)
    close_event = getattr(consumer, "close_event", DEFAULT_CLOSE_EVENT)
    return f"{path}?{query}", connection_id, close_event


def connect_attributes(
    request: HttpRequest | None, name: str, **kwargs: Any
) -> SafeString:
    """The stream's signed URL, the event that ends it, and the tab's
    ``hx-headers`` (read by ``reactive.js``, which opens the stream)."""
    url, connection_id, close_event = stream_url(request, name, **kwargs)
    session = getattr(request, "session", None)
    # Signed for this session: another visitor cannot claim the tab's changes.
    claim = sign_origin(connection_id, getattr(session, "session_key", None))
    return format_html(
        'hx-ext="reactive-morph" data-reactive-stream="{}" data-reactive-close="{}" '
        'hx-headers="{}"',
        url,
        close_event,
        json.dumps({HEADER: claim}),
    )
