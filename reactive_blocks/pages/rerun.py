"""Run a page's view again, as a GET for one browser, and keep what it rendered.

The view runs as the page's visitor is now (their session read afresh, so a
logout or a lost permission shows), through the view's own decorators and
mixins and the ``process_view`` hooks of the project's middleware (where
``LoginRequiredMiddleware`` checks), but not through the rest of the middleware:
nothing is saved or sent, so the session is not saved, flash messages are not
consumed and no cookie is set.
A ``TemplateResponse`` is not rendered at all: its template and context are
enough. A view that returns ``render(...)`` is rendered, and
``{% reactive_connect %}`` records the context it saw (``capture.py``).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any, Literal

from asgiref.sync import async_to_sync, iscoroutinefunction
from django.apps import apps
from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed, PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404
from django.template.response import SimpleTemplateResponse
from django.utils.functional import SimpleLazyObject
from django.utils.module_loading import import_string

from reactive_blocks.origin import origin
from reactive_blocks.pages.capture import capturing
from reactive_blocks.rendering import processed_context
from reactive_blocks.streams.csrf import read_csrf_cookie

if TYPE_CHECKING:
    from collections.abc import Mapping

    from django.http import HttpRequest
    from django.urls import ResolverMatch

    from reactive_blocks.pages.tokens import PageToken

__all__ = ["Outcome", "rerun"]

logger = logging.getLogger(__name__)

# Request headers a stream's request has that the page's own did not.
STREAM_ONLY_HEADERS = frozenset({b"accept", b"last-event-id", b"cache-control"})


@dataclass
class Outcome:
    """What a re-run gave: blocks to render, the end of the stream, or nothing."""

    kind: Literal["render", "end", "skip"]
    template: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


def rerun(
    page: PageToken, match: ResolverMatch, stream_scope: Mapping[str, Any]
) -> Outcome:
    """Run the page's view for the browser of ``stream_scope``. Blocking: call it
    from a thread (``database_sync_to_async``)."""
    request = page_request(page, match, stream_scope)
    # Changes a view makes while re-run are nobody's tab's own.
    with capturing() as capture, origin(None):
        try:
            response = _process_view(request, match)
            if response is None and iscoroutinefunction(match.func):
                response = async_to_sync(match.func)(
                    request, *match.args, **match.kwargs
                )
            elif response is None:
                response = match.func(request, *match.args, **match.kwargs)
        except (PermissionDenied, Http404) as exc:
            return Outcome("end", reason=f"the view raised {type(exc).__name__}")
        except Exception:
            logger.exception(
                "The view of %s raised while re-run for its stream; this update is "
                "skipped, the stream goes on.",
                page.path,
            )
            return Outcome("skip", reason="the view raised")
        status = response.status_code
        if 300 <= status < 500:
            return Outcome("end", reason=f"the view answered {status}")
        if status >= 500:
            return Outcome("skip", reason=f"the view answered {status}")
        if isinstance(response, SimpleTemplateResponse) and not response.is_rendered:
            template = response.resolve_template(response.template_name)
            name = getattr(getattr(template, "template", None), "name", None)
            if name:
                context = response.resolve_context(response.context_data) or {}
                return Outcome(
                    "render", name, {**processed_context(request), **context}
                )
            response.render()
        else:
            getattr(response, "content", None)  # a streaming response: nothing
        if capture.template:
            return Outcome("render", capture.template, capture.context)
        return Outcome(
            "skip", reason="the page no longer renders {% reactive_connect %}"
        )


def _process_view(request: HttpRequest, match: ResolverMatch) -> Any:
    """What the project's middleware says before the view runs: its
    ``process_view`` hooks, where ``LoginRequiredMiddleware`` and most access
    checks of middleware live (a response from one is the answer)."""
    for dotted in settings.MIDDLEWARE:
        middleware = import_string(dotted)
        if not hasattr(middleware, "process_view"):
            continue
        try:
            instance = middleware(_never_called)
        except MiddlewareNotUsed:
            continue
        response = instance.process_view(request, match.func, match.args, match.kwargs)
        if response is not None:
            return response
    return None


def _never_called(request: HttpRequest) -> None:
    """get_response of the middleware above: only their process_view runs."""


def page_request(
    page: PageToken, match: ResolverMatch, stream_scope: Mapping[str, Any]
) -> HttpRequest:
    """The GET the browser made for the page, as it would make it now."""
    headers = [
        (name, value)
        for name, value in stream_scope.get("headers", [])
        if name not in STREAM_ONLY_HEADERS
    ]
    scope = {
        **{
            key: stream_scope[key]
            for key in (
                "type",
                "http_version",
                "scheme",
                "server",
                "client",
                "root_path",
            )
            if key in stream_scope
        },
        "method": "GET",
        "path": page.path,
        "raw_path": page.path.encode(),
        "query_string": page.query.encode("latin-1", "replace"),
        "headers": [*headers, (b"accept", b"text/html")],
    }
    request = ASGIRequest(scope, io.BytesIO())
    session = stream_scope.get("session")
    if session is not None:
        engine = import_module(settings.SESSION_ENGINE)
        # Read afresh: the visitor may have logged out since the page loaded.
        vars(request)["session"] = engine.SessionStore(
            getattr(session, "session_key", None)
        )
        if apps.is_installed("django.contrib.auth"):
            from django.contrib.auth import get_user

            vars(request)["user"] = SimpleLazyObject(lambda: get_user(request))
    if apps.is_installed("django.contrib.messages"):
        from django.contrib.messages.storage import default_storage

        vars(request)["_messages"] = default_storage(request)
    read_csrf_cookie(request)
    vars(request)["resolver_match"] = match
    vars(request)["reactive_rerun"] = True
    return request
