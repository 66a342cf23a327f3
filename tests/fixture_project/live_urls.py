"""Live pages of the fixture project: one with a misspelt name (W016)."""

from __future__ import annotations

from django.shortcuts import render
from django.urls import path
from django.views.generic import DetailView

from tests.models import Note


def typo(request, pk):
    return render(request, "typo.html", {"note": Note.objects.get(pk=pk)})


class NoteDetail(DetailView):
    model = Note
    template_name = "ok.html"


urlpatterns = [
    path("typo/<int:pk>/", typo),
    path("ok/<int:pk>/", NoteDetail.as_view()),
]


CHOICES = ["a", "b"]  # a module-level list a view reads: unhashable


def listed(request):
    return render(
        request, "ok.html", {"note": None, "object": None, "choices": CHOICES}
    )


urlpatterns.append(path("listed/", listed))
