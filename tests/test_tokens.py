from __future__ import annotations

import time
from unittest import mock

import pytest
from django.core import signing

from reactive_blocks.streams.tokens import (
    SALT,
    InvalidStreamToken,
    sign_stream,
    verify_stream,
)


def test_round_trip():
    token = sign_stream("/live/1/", "conn-abc123", "session-1")
    content = verify_stream(token, path="/live/1/", session_key="session-1", max_age=60)
    assert (content.path, content.connection_id) == ("/live/1/", "conn-abc123")
    assert len(content.session_digest) == 32


def signed(path: str, session: str) -> object:
    """A token made when the test runs (one made at collection would expire in a
    long suite)."""
    return lambda: sign_stream(path, "c", session)


@pytest.mark.parametrize(
    ("token", "path", "session", "message"),
    [
        (None, "/live/1/", "s", "carries no token"),
        ("", "/live/1/", "s", "carries no token"),
        ("garbage", "/live/1/", "s", "is not valid"),
        (
            lambda: sign_stream("/live/1/", "c", "s") + "x",
            "/live/1/",
            "s",
            "is not valid",
        ),
        (signed("/live/1/", "s"), "/live/2/", "s", "another path"),
        (signed("/live/1/", "s"), "/live/1/", "other", "another session"),
        (signed("/live/1/", "s"), "/live/1/", None, "another session"),
    ],
)
def test_refusals_say_why(token, path, session, message):
    token = token() if callable(token) else token
    with pytest.raises(InvalidStreamToken, match=message):
        verify_stream(token, path=path, session_key=session, max_age=60)


def test_expired():
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 120):
        token = sign_stream("/live/1/", "c", "s")
    with pytest.raises(InvalidStreamToken, match="has expired"):
        verify_stream(token, path="/live/1/", session_key="s", max_age=60)


def test_page_without_session_binds_none():
    token = sign_stream("/live/1/", "c", None)
    content = verify_stream(token, path="/live/1/", session_key="later", max_age=60)
    assert content.session_digest == ""


def test_signed_with_the_secret_key(settings):
    token = sign_stream("/live/1/", "c", "s")
    settings.SECRET_KEY = "another-secret"
    with pytest.raises(InvalidStreamToken, match="is not valid"):
        verify_stream(token, path="/live/1/", session_key="s", max_age=60)


def test_the_session_key_is_not_readable_in_the_token():
    token = sign_stream("/live/1/", "c", "the-session-key-value")
    assert "the-session-key-value" not in signing.loads(token, salt=SALT).values()
    assert b"the-session-key-value" not in token.encode()


def test_percent_encoded_and_decoded_paths_match():
    token = sign_stream("/live/tag/caf%C3%A9/", "c", None)
    assert verify_stream(token, path="/live/tag/café/", session_key=None, max_age=60)
