"""``{% load reactive_blocks %}``: ``{% reactive_scripts %}`` and ``{% reactive_connect %}``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import template

from reactive_blocks.pages.connect import page_attributes
from reactive_blocks.streams.connect import connect_attributes, scripts

if TYPE_CHECKING:
    from django.utils.safestring import SafeString

register = template.Library()


@register.simple_tag
def reactive_scripts() -> SafeString:
    return scripts()


@register.simple_tag(takes_context=True)
def reactive_connect(
    context: template.Context, name: str | None = None, **kwargs: Any
) -> SafeString:
    """With no argument, this page's own stream; with a route name, that route's."""
    if name is None:
        if kwargs:
            raise template.TemplateSyntaxError(
                f"{{% reactive_connect %}} takes arguments only after a stream "
                f"route's name; got {', '.join(kwargs)} without one."
            )
        return page_attributes(context)
    return connect_attributes(context.get("request"), name, **kwargs)
