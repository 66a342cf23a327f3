"""Signed stream URLs: a browser may open only the streams the server rendered for it.

The token binds the stream's path, a fresh per-tab connection id and the session, and
expires. It is made with ``django.core.signing`` (the project's SECRET_KEY).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

from django.core import signing

from reactive_blocks.identity import session_digest

__all__ = [
    "InvalidStreamToken",
    "StreamToken",
    "load_token",
    "sign_stream",
    "verify_stream",
]

SALT = "reactive_blocks.streams.stream"


class InvalidStreamToken(Exception):
    """The token is missing, forged, expired, or made for another path or session."""


@dataclass(frozen=True, slots=True)
class StreamToken:
    path: str
    connection_id: str
    session_digest: str  # "" when the page was rendered without a session


def sign_stream(path: str, connection_id: str, session_key: str | None) -> str:
    # Signed, not encrypted: it carries a digest of the session key, never the
    # key itself (which is the session cookie's value).
    payload = {"p": path, "c": connection_id, "s": session_digest(session_key)}
    return signing.dumps(payload, salt=SALT, compress=True)


def load_token(token: str | None, *, salt: str, max_age: float) -> dict[str, Any]:
    """The signed dict in ``token``, or ``InvalidStreamToken`` saying why not."""
    if not token:
        raise InvalidStreamToken("The stream URL carries no token.")
    try:
        payload = signing.loads(token, salt=salt, max_age=timedelta(seconds=max_age))
    except signing.SignatureExpired as exc:
        raise InvalidStreamToken("The stream token has expired.") from exc
    except signing.BadSignature as exc:
        raise InvalidStreamToken("The stream token is not valid.") from exc
    if not isinstance(payload, dict):
        raise InvalidStreamToken("The stream token is not valid.")
    return payload


def verify_stream(
    token: str | None, *, path: str, session_key: str | None, max_age: float
) -> StreamToken:
    """Return the token's content, or raise ``InvalidStreamToken`` saying why."""
    payload = load_token(token, salt=SALT, max_age=max_age)
    if not isinstance(payload.get("c"), str):
        raise InvalidStreamToken("The stream token is not valid.")
    # reverse() gives a percent-encoded path, the ASGI scope a decoded one.
    if not isinstance(payload.get("p"), str) or unquote(payload["p"]) != unquote(path):
        raise InvalidStreamToken("The stream token was made for another path.")
    # A page rendered before its visitor had a session binds none: whoever opens it
    # is then checked by has_permission() as themselves.
    if payload.get("s") and payload.get("s") != session_digest(session_key):
        raise InvalidStreamToken("The stream token was made for another session.")
    return StreamToken(path, payload["c"], payload["s"])
