"""CSRF tokens for forms inside live blocks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpResponse
from django.middleware.csrf import CsrfViewMiddleware, get_token

if TYPE_CHECKING:
    from django.http import HttpRequest

__all__ = ["csrf_token"]


def csrf_token(request: HttpRequest) -> str:
    """The browser's CSRF cookie, masked as ``{% csrf_token %}`` expects.

    A stream cannot set a cookie, so a form rendered into it reuses the one the
    page was served with.
    """
    CsrfViewMiddleware(lambda r: HttpResponse()).process_request(request)
    return str(get_token(request))
