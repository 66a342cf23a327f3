"""``{% reactive_connect %}`` with no argument: the stream of the page being rendered."""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.core.exceptions import ImproperlyConfigured
from django.utils.html import format_html

from reactive_blocks.bus.subscription import Position
from reactive_blocks.conf import conf
from reactive_blocks.identity import session_digest
from reactive_blocks.origin import HEADER, current_position, sign_origin
from reactive_blocks.pages.capture import current_capture
from reactive_blocks.pages.follows import follows
from reactive_blocks.pages.tokens import PageToken, sign_page
from reactive_blocks.runtime import get_bus

if TYPE_CHECKING:
    from django.template import Context
    from django.utils.safestring import SafeString

__all__ = ["may_rerun", "no_rerun", "page_attributes"]

CLOSE_EVENT = "reactive-close"


def no_rerun(view: Any) -> Any:
    """Mark a view that must not be run again for its page's stream (it has side
    effects): its page then needs a stream class and the named
    ``{% reactive_connect "route" %}``."""
    view.reactive_rerun = False
    return view


def may_rerun(view: Any) -> bool:
    """Whether ``view`` (a function, or a class-based view's ``as_view()``) may be
    run again for its page's stream."""
    for candidate in (view, getattr(view, "view_class", None)):
        if getattr(candidate, "reactive_rerun", True) is False:
            return False
    return True


def page_attributes(context: Context) -> SafeString:
    """The attributes that open this page's own stream (empty while a stream
    re-runs the view: the tag then records what the page was rendered from)."""
    capture = current_capture()
    template = getattr(getattr(context, "template", None), "name", None) or ""
    if capture is not None:
        capture.template = template
        capture.context = flat(context)
        return format_html("")
    request = context.get("request")
    match = getattr(request, "resolver_match", None)
    if request is None or match is None:
        raise ImproperlyConfigured(
            "{% reactive_connect %} with no argument needs the request of a page "
            "served by a view: add 'django.template.context_processors.request' to "
            "the template engine's context_processors, or pass the stream route's "
            "name, {% reactive_connect 'route-name' ... %}."
        )
    if not may_rerun(match.func):
        raise ImproperlyConfigured(
            f"The view {match._func_path} is marked no_rerun, so its page cannot "
            f"stream itself: give it a stream class and use "
            f"{{% reactive_connect 'route-name' ... %}}."
        )
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    connection_id = secrets.token_urlsafe(12)
    token = PageToken(
        path=request.path,
        query=request.META.get("QUERY_STRING", ""),
        view=match._func_path,
        template=template,
        connection_id=connection_id,
        session_digest=session_digest(session_key),
        follows=tuple(follows(flat(context))),
    )
    position = getattr(request, "reactive_position", None) or current_position()
    if not isinstance(position, Position):
        position = get_bus().position()
    query = urlencode(
        {"token": sign_page(token), "since": position.sequence, "epoch": position.epoch}
    )
    claim = sign_origin(connection_id, session_key)
    return format_html(
        'hx-ext="reactive-morph" data-reactive-stream="{}" data-reactive-close="{}" '
        'hx-headers="{}"',
        f"{conf.PAGE_STREAM_PATH}?{query}",
        CLOSE_EVENT,
        json.dumps({HEADER: claim}),
    )


def flat(context: Context) -> dict[str, Any]:
    """The context's names and values, innermost first, as one dict."""
    return {str(name): value for name, value in context.flatten().items()}
