"""Stream routes of the faulty project: those of streams_urls, and a stream class
whose scope no tracked model emits to (W014)."""

from __future__ import annotations

from reactive_blocks.urls import stream_path
from tests.streams_urls import PageStream
from tests.streams_urls import urlpatterns as routes


class OrphanStream(PageStream):
    def get_scope(self) -> str:
        return f"nobody-emits-{self.kwargs['pk']}"


urlpatterns = [
    *routes,
    stream_path("live/orphan/<int:pk>/", OrphanStream, name="orphan-live"),
]
