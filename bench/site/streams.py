"""The benchmark page's stream: every block is shared by all its viewers."""

from __future__ import annotations

from typing import Any

from bench.site.models import Item
from reactive_blocks.consumers import ReactiveStreamConsumer
from reactive_blocks.urls import stream_path


class ItemStream(ReactiveStreamConsumer):
    template_name = "site/item.html"
    # The load generator opens thousands of streams of one page: unsigned URLs
    # (the peer has none either), each stream a connection of its own.
    require_signed_url = False

    def get_scope(self) -> str:
        return f"item-{self.kwargs['pk']}"

    def get_context(self, changed_paths: frozenset[str]) -> dict[str, Any]:
        return {"item": Item.objects.get(pk=self.kwargs["pk"])}


class FiveBlockStream(ItemStream):
    """Five blocks, two of which read the viewer (rendered per connection)."""

    template_name = "site/item5.html"


urlpatterns = [
    stream_path("live/items/<int:pk>/", ItemStream, name="item-live"),
    stream_path("live/items5/<int:pk>/", FiveBlockStream, name="item5-live"),
]
