"""The page, and the endpoint the load generator saves through."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from django.http import JsonResponse
from django.shortcuts import render

from bench.site.models import Item
from bench.sites import stamped_title
from reactive_blocks import get_bus
from reactive_blocks.streams.hubs import get_hubs

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse


def page(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "site/item.html", {"item": Item.objects.get(pk=pk)})


def page5(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "site/item5.html", {"item": Item.objects.get(pk=pk)})


def live_page(request: HttpRequest, pk: int) -> HttpResponse:
    """The same page as a live page: its own view is its stream."""
    return render(request, "site/live_item.html", {"item": Item.objects.get(pk=pk)})


def item_list(request: HttpRequest) -> HttpResponse:
    """Every item, a row each (bench/rows.py): sent a row at a time."""
    items = Item.objects.order_by("pk")
    return render(request, "site/list.html", {"items": items})


def item_list_whole(request: HttpRequest) -> HttpResponse:
    """The same list with data-reactive-rows="off": sent whole."""
    items = Item.objects.order_by("pk")
    return render(request, "site/list_whole.html", {"items": items})


def session(request: HttpRequest) -> JsonResponse:
    """Give the caller a session (a visitor who logged in, say)."""
    request.session["bench"] = True
    return JsonResponse({})


def save(request: HttpRequest, pk: int) -> JsonResponse:
    """A tracked save whose title carries the time it was committed at."""
    item = Item.objects.get(pk=pk)
    item.title = stamped_title(json.loads(request.body)["n"])
    item.save()
    return JsonResponse({"title": item.title})


def stats(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "subscribers": get_bus().subscriber_count,
            "streams": get_hubs().open_count,
            "renders": get_hubs().counts.counts(),
        }
    )
