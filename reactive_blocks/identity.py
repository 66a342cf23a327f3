"""Names for a session and a connection that reveal neither.

A session key is the session cookie's value and a connection id lets a request
claim a tab's changes, so what travels in tokens, on Redis and in presence are
keyed digests of them (made with the project's SECRET_KEY).
"""

from __future__ import annotations

from django.utils.crypto import salted_hmac

__all__ = ["SALT", "public_id", "session_digest"]

SALT = "reactive_blocks.origin"


def session_digest(session_key: str | None) -> str:
    """Names a session without revealing its key (the session cookie's value)."""
    if not session_key:
        return ""
    return salted_hmac(SALT, session_key, algorithm="sha256").hexdigest()[:32]


def public_id(connection_id: str) -> str:
    """The id presence shows for a connection: stable, but no origin header."""
    return salted_hmac(f"{SALT}.public", connection_id).hexdigest()[:16]
