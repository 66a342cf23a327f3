"""The demo's stream routes (REACTIVE_BLOCKS['URLCONF'])."""

from __future__ import annotations

from typing import Any

from demo_project.demo.models import Document
from reactive_blocks.consumers import ReactiveStreamConsumer
from reactive_blocks.urls import stream_path


class DocumentStream(ReactiveStreamConsumer):
    template_name = "demo/document_detail.html"

    def get_scope(self) -> str:
        return f"doc-{self.kwargs['pk']}"

    def has_permission(self) -> bool:
        return Document.objects.filter(pk=self.kwargs["pk"]).exists()

    def get_context(self, changed_paths: frozenset[str]) -> dict[str, Any]:
        return {"doc": Document.objects.get(pk=self.kwargs["pk"])}


urlpatterns = [
    stream_path("live/docs/<int:pk>/", DocumentStream, name="doc-live"),
]
