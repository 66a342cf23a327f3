"""The demo's stream routes (REACTIVE_BLOCKS['URLCONF'])."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from demo_project.demo.forms import DocumentForm
from demo_project.demo.models import Document, Mention
from reactive_blocks import get_bus
from reactive_blocks.consumers import ReactiveStreamConsumer
from reactive_blocks.urls import stream_path


class DocumentStream(ReactiveStreamConsumer):
    """One document's page: its text, comments, viewers, and what is yours."""

    template_name = "demo/document_detail.html"

    def get_scope(self) -> str:
        return f"doc-{self.kwargs['pk']}"

    def has_permission(self) -> bool:
        document = Document.objects.filter(pk=self.kwargs["pk"]).first()
        return document is not None and document.visible_to(self.user)

    def get_context(self, changed_paths: frozenset[str]) -> dict[str, Any]:
        document = Document.objects.select_related("owner", "last_editor").get(
            pk=self.kwargs["pk"]
        )
        return {
            "doc": document,
            "presence": viewers_of(self.get_scope()),
            # The editing form is a live block too (demo/_form.html).
            "form": DocumentForm(
                instance=document, initial={"version": document.version}
            ),
        }

    def get_connection_context(self, changed_paths: frozenset[str]) -> dict[str, Any]:
        context = dict(super().get_connection_context(changed_paths))
        context["notifications"] = notifications_for(self.user, self.kwargs["pk"])
        return context


def public_documents() -> Any:
    return Document.objects.filter(private=False).select_related("last_editor")


def viewers_of(scope: str) -> dict[str, Any]:
    """Who watches ``scope``: signed-in users once each, and anonymous tabs."""
    seen = get_bus().viewers(scope)
    names = dict(
        get_user_model()
        .objects.filter(pk__in=[int(pk) for pk in seen.users])
        .values_list("pk", "username")
    )
    return {
        "users": [names[int(pk)] for pk in seen.users if int(pk) in names],
        "anonymous": seen.anonymous,
    }


def notifications_for(user: Any, pk: int) -> list[Mention]:
    if not user.is_authenticated:
        return []
    return list(
        Mention.objects.filter(
            user=user, seen=False, comment__document_id=pk
        ).select_related("comment__author")
    )


urlpatterns = [
    stream_path("live/docs/<int:pk>/", DocumentStream, name="doc-live"),
]
