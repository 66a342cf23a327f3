"""What the Redis bus puts on its channels: versioned JSON, checked on the way in.

An event travels as ``{"v": 1, "kind": "event", "epoch", "rev", "prev", "event"}``;
Redis writes the envelope (it assigns ``rev``), the emitting process writes the
``event`` object. ``prev`` is the scope's revision before this one, so a receiver
that saw a different one knows it missed something. Control messages (close a
user's streams, resync everything) are JSON objects kept in a Redis stream and
announced on the control channel as ``<stream id> <JSON>``, so a process that was
disconnected reads those it missed. Anything else on our channels is refused with
the reason it was refused for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from reactive_blocks.events import ChangeEvent

__all__ = [
    "CONTROL_KINDS",
    "VERSION",
    "Control",
    "Malformed",
    "Published",
    "control_payload",
    "event_payload",
    "parse_control",
    "parse_published",
    "stream_id",
]

VERSION = 1
MAX_MESSAGE_BYTES = 1 << 20
CONTROL_KINDS = frozenset(
    {"close_user", "close_session", "close_scope", "recheck", "resync"}
)


class Malformed(Exception):
    """A message we cannot use; ``kind`` groups the reasons for logging."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Published:
    """An event (or a resync notice, ``event`` None) numbered by Redis."""

    epoch: str
    revision: int
    previous: int
    event: ChangeEvent | None
    published_at: float | None = None  # the publisher's time.time(), if it said


@dataclass(frozen=True, slots=True)
class Control:
    kind: str
    user_id: str | None = None
    scope: str | None = None
    sender: str | None = None  # the process that sent it
    id: tuple[int, int] = (0, 0)  # its place in the control stream
    session: str | None = None


def event_payload(event: ChangeEvent, published_at: float | None = None) -> str:
    """The ``event`` object of an envelope (sorted, so equal events encode equally).

    ``recheck``, ``rows`` and ``at`` (when it was published, for the bus lag) are
    written only when set: an event without them reads the same to a process of an
    earlier release (which ignores them when set).
    """
    body: dict[str, object] = {
        "scope": event.scope,
        "paths": sorted(event.changed_paths),
        "origin": event.origin,
        "audience": None if event.audience is None else sorted(event.audience),
    }
    if event.recheck:
        body["recheck"] = True
    if event.rows is not None:
        body["rows"] = sorted(event.rows)
    if published_at is not None:
        body["at"] = round(published_at, 6)
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True)


def control_payload(kind: str, sender: str, **fields: str | None) -> str:
    message = {"v": VERSION, "kind": kind, "from": sender, **fields}
    return json.dumps(message, separators=(",", ":"))


def _load(data: bytes | str) -> dict[str, object]:
    if len(data) > MAX_MESSAGE_BYTES:
        raise Malformed("too large", f"{len(data)} bytes")
    try:
        message = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Malformed("not JSON", str(exc)) from None
    if not isinstance(message, dict):
        raise Malformed("not an object", repr(message)[:80])
    if message.get("v") != VERSION:
        raise Malformed("unknown version", repr(message.get("v"))[:80])
    return message


def _integer(message: dict[str, object], key: str) -> int:
    value = message.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Malformed("bad envelope", f"{key}={value!r}"[:80])
    return value


def parse_published(data: bytes | str, scope: str) -> Published:
    """Read a message from ``scope``'s channel, or raise ``Malformed``."""
    message = _load(data)
    kind = message.get("kind")
    epoch = message.get("epoch")
    if kind not in ("event", "resync") or not isinstance(epoch, str) or not epoch:
        raise Malformed("bad envelope", f"kind={kind!r} epoch={epoch!r}"[:80])
    revision, previous = _integer(message, "rev"), _integer(message, "prev")
    if revision <= previous:
        raise Malformed("bad envelope", f"rev={revision} prev={previous}")
    if kind == "resync":
        return Published(epoch, revision, previous, None)
    body = message.get("event")
    if not isinstance(body, dict) or body.get("scope") != scope:
        raise Malformed("bad event", f"not an event of {scope!r}")
    try:
        event = ChangeEvent(
            scope,
            _strings(body.get("paths")),
            origin=_optional_str(body.get("origin")),
            audience=None
            if body.get("audience") is None
            else _strings(body.get("audience")),
            recheck=body.get("recheck", False),  # type-checked by ChangeEvent
            rows=None if body.get("rows") is None else _strings(body.get("rows")),
        )
    except (TypeError, ValueError) as exc:
        raise Malformed("bad event", str(exc)[:200]) from None
    at = body.get("at")
    published_at = float(at) if isinstance(at, int | float) else None
    return Published(epoch, revision, previous, event, published_at)


def stream_id(value: bytes | str) -> tuple[int, int]:
    """A Redis stream id (``"1700000000000-3"``) as a comparable pair."""
    text = value.decode() if isinstance(value, bytes) else value
    milliseconds, _, sequence = text.partition("-")
    try:
        return int(milliseconds), int(sequence or 0)
    except ValueError:
        raise Malformed("bad control id", repr(text)[:80]) from None


def parse_control(data: bytes | str, id: bytes | str | None = None) -> Control:
    """Read a control, announced as ``<stream id> <JSON>`` (or, from the stream,
    JSON with its ``id``), or raise ``Malformed``."""
    if id is None:
        text = data.decode(errors="replace") if isinstance(data, bytes) else data
        id, _, data = text.partition(" ")
    place = stream_id(id)
    message = _load(data)
    kind = message.get("kind")
    if kind not in CONTROL_KINDS:
        raise Malformed("unknown control", repr(kind)[:80])
    user_id, scope = message.get("user_id"), message.get("scope")
    session = message.get("session")
    if kind == "close_user" and not isinstance(user_id, str):
        raise Malformed("bad control", f"user_id={user_id!r}"[:80])
    if kind == "close_session" and not isinstance(session, str):
        raise Malformed("bad control", f"session={session!r}"[:80])
    if kind in ("close_scope", "recheck") and not isinstance(scope, str):
        raise Malformed("bad control", f"scope={scope!r}"[:80])
    if scope is not None and not isinstance(scope, str):
        raise Malformed("bad control", f"scope={scope!r}"[:80])
    sender = message.get("from")
    return Control(
        str(kind),
        user_id if isinstance(user_id, str) else None,
        scope if isinstance(scope, str) else None,
        sender if isinstance(sender, str) else None,
        place,
        session if isinstance(session, str) else None,
    )


def _strings(value: object) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"expected a list of strings, got {value!r}"[:120])
    return frozenset(value)


def _optional_str(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"expected a string or null, got {value!r}"[:120])
    return value
