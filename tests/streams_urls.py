"""Stream routes for the in-process tests of the template tags and routing."""

from __future__ import annotations

from reactive_blocks.consumers import ReactiveStreamConsumer
from reactive_blocks.urls import stream_path


class PageStream(ReactiveStreamConsumer):
    template_name = "stream/page.html"

    def get_scope(self) -> str:
        return f"doc-{self.kwargs['pk']}"


class QuietStream(PageStream):
    close_event = "stop-now"


urlpatterns = [
    stream_path("live/page/<int:pk>/", PageStream, name="page-live"),
    stream_path("live/quiet/", QuietStream, name="quiet-live"),
]
