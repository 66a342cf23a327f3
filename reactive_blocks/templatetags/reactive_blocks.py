"""``{% load reactive_blocks %}``: ``{% reactive_scripts %}`` and ``{% reactive_connect %}``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import template

from reactive_blocks.streams.connect import connect_attributes, scripts

if TYPE_CHECKING:
    from django.utils.safestring import SafeString

register = template.Library()


@register.simple_tag
def reactive_scripts() -> SafeString:
    return scripts()


@register.simple_tag(takes_context=True)
def reactive_connect(context: template.Context, name: str, **kwargs: Any) -> SafeString:
    return connect_attributes(context.get("request"), name, **kwargs)
