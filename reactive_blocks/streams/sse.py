"""Server-Sent Events framing, as the htmx SSE extension and EventSource read it."""

from __future__ import annotations

__all__ = ["encode_comment", "encode_event", "encode_retry"]


def _field(value: str) -> str:
    # A newline in ``event`` or ``id`` would end the field early and could inject
    # another field, so line breaks are dropped there.
    return value.replace("\r", "").replace("\n", "")


def encode_event(
    data: str, *, event: str | None = None, id: str | None = None
) -> bytes:
    """One event: optional ``event:`` and ``id:``, a ``data:`` line per line of
    ``data``, and the blank line that ends it."""
    lines = []
    if event is not None:
        lines.append(f"event: {_field(event)}")
    if id is not None:
        lines.append(f"id: {_field(id)}")
    # Every line break form ends a line for EventSource; each becomes its own
    # data line, so content can never end the event early.
    payload = data.replace("\r\n", "\n").replace("\r", "\n")
    lines.extend(f"data: {line}" for line in payload.split("\n"))
    return _encode("\n".join(lines) + "\n\n")


def encode_comment(text: str = "") -> bytes:
    """A comment line (``: text``); clients ignore it, proxies see traffic."""
    return _encode("".join(f": {line}\n" for line in _lines(text))) + b"\n"


def encode_retry(milliseconds: int) -> bytes:
    """Tell the client how long to wait before reconnecting."""
    value: object = milliseconds
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            f"retry must be a non-negative int of milliseconds, got {milliseconds!r}."
        )
    return f"retry: {milliseconds}\n\n".encode()


def _encode(text: str) -> bytes:
    # A lone surrogate (from a broken client or database value) cannot be UTF-8:
    # it becomes "?" instead of raising inside a stream's send loop.
    return text.encode("utf-8", "replace")


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
