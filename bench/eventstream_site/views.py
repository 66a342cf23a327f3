"""The save endpoint the load generator drives, and the listener count."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from django.http import JsonResponse
from django.utils.html import escape
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django_eventstream import send_event
from django_eventstream.views import get_listener_manager

from bench.eventstream_site.models import Item
from bench.sites import stamped_title

if TYPE_CHECKING:
    from django.http import HttpRequest

# The same block bench/site renders, byte for byte apart from the title.
FRAGMENT = (
    '<article class="item"><h2 class="item-title">{title}</h2>'
    '<p class="item-body">An item whose title changes as the benchmark saves it; '
    "the rest of this block pads it to about three hundred bytes, the size of a "
    "typical live fragment.</p><footer>{body}</footer></article>"
)


@csrf_exempt
@require_POST
def save(request: HttpRequest, pk: int) -> JsonResponse:
    """Save the item with the commit time in its title, then push the fragment."""
    item = Item.objects.get(pk=pk)
    item.title = stamped_title(json.loads(request.body)["n"])
    item.save()
    html = FRAGMENT.format(title=escape(item.title), body=escape(item.body))
    send_event(f"item-{pk}", "item", html)
    return JsonResponse({"title": item.title})


def stats(request: HttpRequest) -> JsonResponse:
    """Connected SSE listeners of this process, in total and per channel."""
    manager = get_listener_manager()
    with manager.lock:
        by_channel = {
            channel: len(listeners)
            for channel, listeners in manager.listeners_by_channel.items()
        }
        listeners = len(set().union(*manager.listeners_by_channel.values()))
    return JsonResponse({"listeners": listeners, "channels": by_channel})
