"""The cluster project's page, and the controls the tests drive over HTTP."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model, login
from django.http import JsonResponse
from django.shortcuts import render

import reactive_blocks
from reactive_blocks import get_bus
from tests.cluster.streams import document_context
from tests.models import Document

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse


def page(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "cluster/doc.html", document_context(pk, f"doc-{pk}"))


def save(request: HttpRequest, pk: int) -> JsonResponse:
    """A tracked save, as an edit form would make it."""
    doc = Document.objects.get(pk=pk)
    doc.title = json.loads(request.body)["title"]
    doc.save()
    return JsonResponse({"title": doc.title})


def lock(request: HttpRequest, pk: int) -> JsonResponse:
    """One save that changes the title and who may watch (an access field)."""
    body = json.loads(request.body)
    doc = Document.objects.get(pk=pk)
    doc.title, doc.locked_to = body["title"], body["locked_to"]
    doc.save()
    return JsonResponse({})


def notify(request: HttpRequest, pk: int) -> JsonResponse:
    """A change that only some users may see (audience)."""
    body = json.loads(request.body)
    Document.objects.filter(pk=pk).update(content=body["text"])
    reactive_blocks.emit(f"doc-{pk}", ["notice"], audience=body["to"])
    return JsonResponse({})


def sign_in(request: HttpRequest, username: str) -> JsonResponse:
    user, _ = get_user_model().objects.get_or_create(username=username)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return JsonResponse({"id": user.pk})


def presence(request: HttpRequest, pk: int) -> JsonResponse:
    bus = get_bus()
    viewers = bus.viewers(f"doc-{pk}")
    return JsonResponse(
        {
            "connections": sorted(c.session_id for c in bus.presence(f"doc-{pk}")),
            "users": sorted(viewers.users),
            "anonymous": viewers.anonymous,
        }
    )


def stats(request: HttpRequest) -> JsonResponse:
    """The bus's own counters and state, for tests that must explain a failure."""
    bus = get_bus()
    link = bus._link  # type: ignore[attr-defined]
    return JsonResponse(
        {
            "queued": link.outbox.queued,
            "published": link.outbox.published,
            "attempts": link.outbox.attempts,
            "connects": link.connects,
            "down": link.down,
            "epoch": link.listener.epoch,
            "max_sequence": link.listener.max_sequence,
            "live": link.listener.live,
            "subscribers": bus.subscriber_count,
            "tasks": [repr(t) for t in link._tasks],
        }
    )
