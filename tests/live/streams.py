"""The stream routes of the live project (REACTIVE_BLOCKS['URLCONF'])."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from reactive_blocks.consumers import ReactiveStreamConsumer
from reactive_blocks.urls import stream_path
from tests.live.state import DISCONNECTS, DOCS, HELD, RELEASE


class Fragile:
    def __init__(self, explode: bool) -> None:
        self.explode = explode

    @property
    def value(self) -> str:
        if self.explode:
            raise ValueError("the fragile block exploded")
        return "intact"


class DocumentStream(ReactiveStreamConsumer):
    template_name = "live/doc.html"

    def get_scope(self) -> str:
        return f"doc-{self.kwargs['pk']}"

    def has_permission(self) -> bool:
        doc = DOCS.get(self.kwargs["pk"])
        if doc is None or (doc["private"] and not self.user.is_authenticated):
            return False
        allowed = doc["readers"] is None or self.user.get_username() in doc["readers"]
        if doc["hold_permission"]:
            # Answered; a change may land before the stream joins its hub.
            doc["hold_permission"] = False
            HELD.set()
            RELEASE.wait(10)
        return allowed

    def get_context(self, changed_paths: frozenset[str]) -> dict[str, Any]:
        doc = DOCS[self.kwargs["pk"]]
        if doc["context_fails"]:
            doc["context_fails"] -= 1
            raise RuntimeError("the database is away")
        if doc["hold_context"]:
            doc["hold_context"] = False
            HELD.set()
            RELEASE.wait(10)  # bounded: a broken test must not hang the server
        return {"doc": {**doc, "fragile": Fragile(doc["explode"])}}

    async def on_disconnect(self) -> None:
        DISCONNECTS.append(self.connection_id)


class OpenDocumentStream(DocumentStream):
    require_signed_url = False

    def on_disconnect(self) -> None:  # type: ignore[override]
        # A plain method runs in a thread, so the ORM may be used here.
        get_user_model().objects.count()
        DISCONNECTS.append(self.connection_id)

    def get_scope(self) -> str:
        if self.kwargs["pk"] == 99:
            raise RuntimeError("a broken get_scope()")
        return super().get_scope()


class WholeSiteStream(OpenDocumentStream):
    """One scope for every document: pages differ by their URL argument only."""

    def get_scope(self) -> str:
        return "all-docs"


class FormStream(OpenDocumentStream):
    template_name = "live/form.html"


class ParityStream(DocumentStream):
    template_name = "live/parity.html"


urlpatterns = [
    stream_path("live/docs/<int:pk>/", DocumentStream, name="doc-live"),
    stream_path("live/open/<int:pk>/", OpenDocumentStream, name="open-live"),
    stream_path("live/site/<int:pk>/", WholeSiteStream, name="site-live"),
    stream_path("live/form/<int:pk>/", FormStream, name="form-live"),
    stream_path("live/parity/<int:pk>/", ParityStream, name="parity-live"),
]
