"""The benchmark page's stream: every block is shared by all its viewers."""

from __future__ import annotations

from typing import Any

from bench.site.models import Item
from reactive_blocks.consumers import ReactiveStreamConsumer
from reactive_blocks.urls import stream_path


class ItemStream(ReactiveStreamConsumer):
    template_name = "site/item.html"

    def get_scope(self) -> str:
        return f"item-{self.kwargs['pk']}"

    def get_context(self, changed_paths: frozenset[str]) -> dict[str, Any]:
        return {"item": Item.objects.get(pk=self.kwargs["pk"])}


urlpatterns = [stream_path("live/items/<int:pk>/", ItemStream, name="item-live")]
