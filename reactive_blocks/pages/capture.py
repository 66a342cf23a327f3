"""What a page's re-run rendered: ``{% reactive_connect %}`` records it here.

A view that returns ``render(...)`` gives back HTML only; the template's context
is seen by the tag, which records it (with the template's name) instead of
signing a new stream while the stream's own re-run is going on.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["Capture", "capturing", "current_capture"]


@dataclass
class Capture:
    template: str | None = None
    context: dict[str, Any] = field(default_factory=dict)


_capture: ContextVar[Capture | None] = ContextVar(
    "reactive_blocks_capture", default=None
)


def current_capture() -> Capture | None:
    """The capture of the re-run going on in this context, if any."""
    return _capture.get()


@contextlib.contextmanager
def capturing() -> Iterator[Capture]:
    capture = Capture()
    token = _capture.set(capture)
    try:
        yield capture
    finally:
        _capture.reset(token)
