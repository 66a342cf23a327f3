"""Ordinary views: nothing here knows about streams."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth import get_user_model, login, logout
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import DetailView, ListView

import reactive_blocks
from reactive_blocks.streams.hubs import get_hubs
from tests.models import Note, Remark
from tests.pages_site.streams import public_notes


def visible(request: HttpRequest):
    """Public notes, and the private notes of whoever asks."""
    if not request.user.is_authenticated:
        return Note.objects.filter(private=False)
    return Note.objects.filter(Q(private=False) | Q(owner=request.user))


def note(request: HttpRequest, pk: int) -> HttpResponse:
    # A view that writes to its session: a re-run must not save it.
    request.session["views"] = request.session.get("views", 0) + 1
    return render(
        request,
        "pages_site/note.html",
        {"note": get_object_or_404(visible(request), pk=pk)},
    )


class NoteList(ListView):
    template_name = "pages_site/list.html"

    def get_queryset(self):
        return visible(self.request).order_by("pk")


class MyNote(LoginRequiredMixin, DetailView):
    template_name = "pages_site/mine.html"
    context_object_name = "note"

    def get_queryset(self):
        return Note.objects.filter(owner=self.request.user)


@reactive_blocks.no_rerun
def side_effect(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "pages_site/note.html", {"note": Note.objects.get(pk=pk)})


@csrf_exempt
def save(request: HttpRequest, pk: int) -> JsonResponse:
    values = json.loads(request.body or b"{}")
    note = Note.objects.get(pk=pk)
    for name, value in values.items():
        if name == "owner":
            value = get_user_model().objects.get(username=value) if value else None
        setattr(note, name, value)
    note.save()
    return JsonResponse({})


@csrf_exempt
def remark(request: HttpRequest, pk: int) -> JsonResponse:
    Remark.objects.create(note_id=pk, text=json.loads(request.body)["text"])
    return JsonResponse({})


@csrf_exempt
def create(request: HttpRequest) -> JsonResponse:
    created = Note.objects.create(**json.loads(request.body))
    return JsonResponse({"pk": created.pk})


def sign_in(request: HttpRequest, username: str) -> JsonResponse:
    user, _ = get_user_model().objects.get_or_create(username=username)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return JsonResponse({"id": user.pk})


def flash(request: HttpRequest) -> JsonResponse:
    messages.info(request, "kept for the next page")
    return JsonResponse({})


def stats(request: HttpRequest) -> JsonResponse:
    hubs = get_hubs()
    return JsonResponse({**hubs.counts.counts(), "open": hubs.open_count})


def broken(request: HttpRequest, pk: int) -> HttpResponse:
    """Fails on every run but the first of a note titled "break"."""
    note = Note.objects.get(pk=pk)
    if note.title == "break":
        raise RuntimeError("a bug in the view")
    return render(request, "pages_site/note.html", {"note": note})


def views_counted(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"views": request.session.get("views", 0)})


def sign_out(request: HttpRequest) -> JsonResponse:
    logout(request)
    return JsonResponse({})


def guarded(request: HttpRequest, pk: int) -> HttpResponse:
    """No decorator: GuardMiddleware's process_view keeps strangers out."""
    return render(request, "pages_site/note.html", {"note": Note.objects.get(pk=pk)})


def drop_session(request: HttpRequest) -> JsonResponse:
    """Delete the caller's session without logging out (no signal is sent), as
    an expiry, a password change elsewhere or an admin would."""
    request.session.delete()
    return JsonResponse({})


def flush(request: HttpRequest) -> JsonResponse:
    """End the session without logging out (a "forget me" button would)."""
    request.session.flush()
    return JsonResponse({})


def morph(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "pages_site/morph.html", {"note": Note.objects.get(pk=pk)})


def keyed(request: HttpRequest) -> HttpResponse:
    """A list whose rows carry ids made from their item: sent a row at a time."""
    context = {"notes": public_notes(), "heading": "Notes"}
    return render(request, "pages_site/keyed.html", context)


def greeting(request: HttpRequest) -> HttpResponse:
    return render(request, "pages_site/greeting.html", {"heading": "Notes"})


def keyed_stream(request: HttpRequest) -> HttpResponse:
    """The same list, streamed by a stream class (streams.py)."""
    context = {"notes": public_notes(), "heading": "Notes"}
    return render(request, "pages_site/keyed_stream.html", context)


@csrf_exempt
def delete(request: HttpRequest, pk: int) -> JsonResponse:
    Note.objects.filter(pk=pk).delete()
    return JsonResponse({})
