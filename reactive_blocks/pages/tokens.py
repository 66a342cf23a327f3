"""Signed page streams: the token binds the page's URL, its view and the session.

A browser may follow only what the server rendered for it: the bus scopes the
page follows travel in the token too, so no client can pick its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core import signing

from reactive_blocks.identity import session_digest
from reactive_blocks.streams.tokens import InvalidStreamToken, load_token

__all__ = ["PageToken", "sign_page", "verify_page"]

SALT = "reactive_blocks.pages.page"


@dataclass(frozen=True, slots=True)
class PageToken:
    path: str  # the page's path, as the view saw it
    query: str  # its query string
    view: str  # the dotted path of the view that rendered it
    template: str  # the template the page was rendered from
    connection_id: str
    session_digest: str  # "" when the page was rendered without a session
    follows: tuple[str, ...]  # the bus scopes the page follows


def sign_page(token: PageToken) -> str:
    payload = {
        "p": token.path,
        "q": token.query,
        "v": token.view,
        "t": token.template,
        "c": token.connection_id,
        "s": token.session_digest,
        "f": list(token.follows),
    }
    return signing.dumps(payload, salt=SALT, compress=True)


def verify_page(
    token: str | None, *, session_key: str | None, max_age: float
) -> PageToken:
    """Return the token's content, or raise ``InvalidStreamToken`` saying why."""
    payload = load_token(token, salt=SALT, max_age=max_age)
    texts = [payload.get(key) for key in "pqvtcs"]
    follows = payload.get("f")
    if not all(isinstance(text, str) for text in texts) or not (
        isinstance(follows, list) and all(isinstance(f, str) for f in follows)
    ):
        raise InvalidStreamToken("The stream token is not valid.")
    if payload["s"] and payload["s"] != session_digest(session_key):
        raise InvalidStreamToken("The stream token was made for another session.")
    path, query, view, template, connection_id, digest = texts
    return PageToken(path, query, view, template, connection_id, digest, tuple(follows))  # type: ignore[arg-type]
