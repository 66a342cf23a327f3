"""Render one block of a template: the one place streams render through."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.template import Engine
from render_block import render_block_to_string

if TYPE_CHECKING:
    from collections.abc import Mapping

    from django.http import HttpRequest

__all__ = ["processed_context", "render_block"]


def render_block(
    template_name: str,
    block_name: str,
    context: Mapping[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> str:
    """Render ``{% block block_name %}`` of ``template_name`` as the page would.

    Inheritance and ``{{ block.super }}`` work as in a full render; with a
    ``request``, context processors run too (django-render-block does the work).
    """
    html: str = render_block_to_string(
        template_name, block_name, context or {}, request
    )
    return html


def processed_context(request: HttpRequest) -> dict[str, Any]:
    """What the template engine's context processors give for ``request``.

    A page's ``RequestContext`` has them under the view's context; a block that
    reads the viewer gets them the same way on the stream (``perms``, the user
    of a tag that takes the context...). Passing the request to
    django-render-block instead would let them override the stream's own
    context, whose ``csrf_token`` matches the browser's cookie.
    """
    context: dict[str, Any] = {}
    for processor in Engine.get_default().template_context_processors:
        context.update(processor(request))
    return context
