"""The live project's "database": documents in memory, and what happened to streams."""

from __future__ import annotations

import threading
from typing import Any

DOCS: dict[int, dict[str, Any]] = {}
DISCONNECTS: list[str] = []
# A context build that waits (doc "hold_context"): HELD says it began, RELEASE
# lets it go on. A change can then land while a render is in flight.
HELD = threading.Event()
RELEASE = threading.Event()


def reset() -> None:
    DOCS.clear()
    for pk in (1, 2):
        DOCS[pk] = {
            "title": f"Doc {pk}",
            "content": "Body",
            "private": pk == 2,
            "readers": None,  # usernames allowed to watch; None: everyone
            "explode": False,  # the fragile block raises while this is set
            "context_fails": 0,  # builds of the context that raise, counting down
            "hold_context": False,  # the next build waits for RELEASE
            "hold_permission": False,  # the next check waits for RELEASE
        }
    DISCONNECTS.clear()
    HELD.clear()
    RELEASE.clear()


reset()
