"""The cluster project's stream: a tracked document, its viewers, a notice."""

from __future__ import annotations

from typing import Any

from reactive_blocks import get_bus
from reactive_blocks.consumers import ReactiveStreamConsumer
from reactive_blocks.urls import stream_path
from tests.models import Document


def document_context(pk: int, scope: str) -> dict[str, Any]:
    doc = Document.objects.get(pk=pk)
    return {"doc": doc, "notice": doc.content, "presence": get_bus().viewers(scope)}


class DocumentStream(ReactiveStreamConsumer):
    template_name = "cluster/doc.html"

    def get_scope(self) -> str:
        return f"doc-{self.kwargs['pk']}"

    def has_permission(self) -> bool:
        doc = Document.objects.filter(pk=self.kwargs["pk"]).first()
        return doc is not None and doc.locked_to in ("", self.user.get_username())

    def get_context(self, changed_paths: frozenset[str]) -> dict[str, Any]:
        return document_context(self.kwargs["pk"], self.scope_name)


urlpatterns = [stream_path("live/docs/<int:pk>/", DocumentStream, name="cluster-doc")]
