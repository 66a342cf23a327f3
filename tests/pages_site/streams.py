"""A stream class beside the live pages: the same keyed list, one shared render."""

from __future__ import annotations

from typing import Any

from reactive_blocks.consumers import ReactiveStreamConsumer
from reactive_blocks.urls import stream_path
from tests.models import Note


def public_notes() -> Any:
    return Note.objects.filter(private=False).order_by("title", "pk")


class NotesStream(ReactiveStreamConsumer):
    template_name = "pages_site/keyed_stream.html"

    def get_scope(self) -> str:
        return "tests.note"  # every tracked save of a note emits to it

    def get_context(self, changed_paths: frozenset[str]) -> dict[str, Any]:
        return {"notes": public_notes(), "heading": "Notes"}


class GreetingStream(NotesStream):
    """A block whose tag reads the viewer as it renders (tests/templatetags)."""

    template_name = "pages_site/greeting.html"


def derive_notes(index: Any) -> None:
    """The stream's context names the list ``notes``; tracked saves of a note
    change ``note.*`` (REACTIVE_BLOCKS["INDEX_BUILDERS"])."""
    index.derive("notes", from_paths={"note"})


urlpatterns = [
    stream_path("live/notes/", NotesStream, name="notes-live"),
    stream_path("live/greeting/", GreetingStream, name="greeting-live"),
]
