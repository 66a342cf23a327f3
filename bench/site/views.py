"""The page, and the endpoint the load generator saves through."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from django.http import JsonResponse
from django.shortcuts import render

from bench.site.models import Item
from reactive_blocks import get_bus

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse


def page(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "site/item.html", {"item": Item.objects.get(pk=pk)})


def save(request: HttpRequest, pk: int) -> JsonResponse:
    """A tracked save whose title carries the time it was committed at.

    ``time.monotonic()`` is one clock for every process of the machine, so a
    reader subtracts it from its own to get the change-to-fragment latency.
    """
    number = json.loads(request.body)["n"]
    item = Item.objects.get(pk=pk)
    item.title = f"{number} {time.monotonic():.6f}"
    item.save()
    return JsonResponse({})


def stats(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"subscribers": get_bus().subscriber_count})
