"""CSRF tokens for forms inside live blocks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpResponse
from django.middleware.csrf import CsrfViewMiddleware, get_token

if TYPE_CHECKING:
    from django.http import HttpRequest

__all__ = ["csrf_token", "read_csrf_cookie"]


def csrf_token(request: HttpRequest) -> str:
    """The browser's CSRF cookie, masked as ``{% csrf_token %}`` expects.

    A stream cannot set a cookie, so a form rendered into it reuses the one the
    page was served with.
    """
    read_csrf_cookie(request)
    return str(get_token(request))


def read_csrf_cookie(request: HttpRequest) -> None:
    """Make ``get_token()`` (and the csrf context processor) use the browser's
    cookie, as CsrfViewMiddleware does for a page."""
    if "CSRF_COOKIE" not in request.META:
        CsrfViewMiddleware(lambda r: HttpResponse()).process_request(request)
