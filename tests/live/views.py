"""Views of the live project: the page, and controls the tests drive over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model, login, logout
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from reactive_blocks import ChangeEvent, get_bus
from reactive_blocks.origin import current_origin
from reactive_blocks.streams.hubs import get_hubs
from tests.live import state

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse


def page(request: HttpRequest, pk: int) -> HttpResponse:
    if pk not in state.DOCS:
        raise Http404
    context = {"doc": {**state.DOCS[pk], "fragile": {"value": "intact"}}, "pk": pk}
    return render(request, "live/doc.html", context)


def parity(request: HttpRequest, pk: int) -> HttpResponse:
    """A page whose blocks read the viewer through processors, tags and forms."""
    return render(request, "live/parity.html", {"doc": state.DOCS[pk], "pk": pk})


@csrf_exempt
def change(request: HttpRequest) -> JsonResponse:
    """Update a document and emit, as a view saving a model would."""
    body = json.loads(request.body or b"{}")
    pk = int(body.get("pk", 1))
    state.DOCS[pk].update(body.get("set", {}))
    for _ in range(int(body.get("repeat", 1))):
        get_bus().emit_sync(
            ChangeEvent(
                body.get("scope", f"doc-{pk}"),
                frozenset(body.get("paths", [])),
                origin=current_origin(),
                audience=body.get("audience"),
                recheck=bool(body.get("recheck")),
            )
        )
    if "during_render" in body:
        # Another writer's change that lands while this one's render is in
        # flight (a thread, as another process would: not Django's own thread).
        threading.Thread(target=_change_during_render, args=(pk, body)).start()
    return JsonResponse({"sequence": get_bus().sequence})


def _change_during_render(pk: int, body: dict[str, object]) -> None:
    later = body["during_render"]
    assert isinstance(later, dict)
    if state.HELD.wait(10):
        state.DOCS[pk].update(later["set"])
        get_bus().emit_sync(
            ChangeEvent(
                f"doc-{pk}", frozenset(later["paths"]), recheck=later["recheck"]
            )
        )
    state.RELEASE.set()


def sign_in(request: HttpRequest, username: str) -> JsonResponse:
    user, _ = get_user_model().objects.get_or_create(username=username)
    if request.GET.get("superuser"):
        user.is_superuser = True
        user.save()
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return JsonResponse({"id": user.pk})


def sign_out(request: HttpRequest) -> JsonResponse:
    logout(request)
    return JsonResponse({})


def anonymous_session(request: HttpRequest) -> JsonResponse:
    """Give an anonymous visitor a session (as a cart or a preference would)."""
    request.session["seen"] = True
    return JsonResponse({})


def flush(request: HttpRequest) -> JsonResponse:
    request.session.flush()
    return JsonResponse({})


def recheck(request: HttpRequest, scope: str) -> JsonResponse:
    get_bus().recheck(scope)
    return JsonResponse({})


def rename(request: HttpRequest, old: str, new: str) -> JsonResponse:
    get_user_model().objects.filter(username=old).update(username=new)
    return JsonResponse({})


def close_user(request: HttpRequest, user_id: str) -> JsonResponse:
    return JsonResponse({"closed": get_bus().close_user(user_id)})


def stats(request: HttpRequest) -> JsonResponse:
    bus = get_bus()
    return JsonResponse(
        {
            "presence": {
                scope: [c.session_id for c in bus.presence(scope)]
                for scope in ("doc-1", "doc-2")
            },
            "subscribers": bus.subscriber_count,
            "open": get_hubs().open_count,
            "visitors": get_hubs().visitor_count,
            "rss": _rss(),
            "renders": get_hubs().counts.counts(),
            "trims": get_hubs().trim.count,
            "disconnects": state.DISCONNECTS,
        }
    )


def _rss() -> int:
    """This process's resident memory, in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def tasks(request: HttpRequest) -> JsonResponse:
    """How many asyncio tasks the server's loop holds (an async view runs on it)."""
    return JsonResponse({"tasks": len(asyncio.all_tasks())})


def reset(request: HttpRequest) -> JsonResponse:
    state.reset()
    get_hubs().forget_opens()
    return JsonResponse({})
