"""A session that ends takes its streams with it: a logout, a flush, a new key.

Streams carry a digest of the session that opened them (``ConnectionInfo.session``),
so the bus can end them in every process; per-user blocks and presence stop at once
instead of at the end of the stream's lifetime.
"""

from __future__ import annotations

import logging
from typing import Any

from reactive_blocks.identity import session_digest
from reactive_blocks.runtime import get_bus

__all__ = ["end_session_streams", "on_logged_out"]

logger = logging.getLogger(__name__)


def end_session_streams(session_key: str | None) -> int:
    """End the streams opened by ``session_key``; how many in this process."""
    if not session_key:
        return 0
    try:
        return get_bus().close_session(session_digest(session_key))
    except Exception:
        logger.exception("Could not end the streams of a session that ended.")
        return 0


def on_logged_out(sender: Any, request: Any = None, **kwargs: Any) -> None:
    """Django's ``user_logged_out``: sent before the session is flushed."""
    session = getattr(request, "session", None)
    end_session_streams(getattr(session, "session_key", None))
