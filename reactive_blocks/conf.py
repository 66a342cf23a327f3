"""The ``REACTIVE_BLOCKS`` setting, read in one place.

Every property reads ``django.conf.settings`` when accessed, so ``override_settings``
works in tests without extra wiring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from reactive_blocks.paths import freeze_paths

__all__ = ["BusSettings", "conf"]

# The embedded default: across the processes of one machine, through the database.
DEFAULT_BUS = {"BACKEND": "reactive_blocks.DatabaseBus", "OPTIONS": {"maxsize": 256}}
KNOWN_KEYS = frozenset(
    {
        "ARGUMENT_TAGS",
        "AUDIENCE_SCOPES",
        "BUS",
        "CONNECTION_SCOPES",
        "DIRECT_WRITES",
        "EMITTED_PATHS",
        "HEARTBEAT_SECONDS",
        "INDEX_BUILDERS",
        "MAX_BUFFERED_BYTES",
        "MAX_FRAGMENT_BYTES",
        "MAX_STREAMS_PER_ADDRESS",
        "MAX_STREAMS_PER_PROCESS",
        "MAX_STREAMS_PER_VISITOR",
        "METRICS_PUBLIC",
        "METRICS_TOKEN",
        "PAGE_STREAM_PATH",
        "SCAN_EXCLUDE",
        "SCAN_INCLUDE",
        "STREAM_MAX_SECONDS",
        "STREAM_OPENS_BURST",
        "STREAM_OPENS_PER_SECOND",
        "STREAMS_PATH",
        "TOKEN_MAX_AGE_SECONDS",
        "URLCONF",
    }
)


@dataclass(frozen=True, slots=True)
class BusSettings:
    backend: str
    options: dict[str, Any]


class Settings:
    """Typed, validated views of ``settings.REACTIVE_BLOCKS`` with defaults."""

    @property
    def _raw(self) -> dict[str, Any]:
        raw = getattr(django_settings, "REACTIVE_BLOCKS", {})
        if not isinstance(raw, dict):
            raise ImproperlyConfigured(
                f"REACTIVE_BLOCKS must be a dict, got {type(raw).__name__}: {raw!r}."
            )
        unknown = sorted(set(raw) - KNOWN_KEYS)
        if unknown:
            raise ImproperlyConfigured(
                f"REACTIVE_BLOCKS has unknown key(s) {', '.join(map(repr, unknown))}; "
                f"known keys are {', '.join(sorted(KNOWN_KEYS))}."
            )
        return raw

    @property
    def BUS(self) -> BusSettings:
        bus = self._raw.get("BUS", DEFAULT_BUS)
        if not isinstance(bus, dict) or not isinstance(bus.get("BACKEND"), str):
            raise ImproperlyConfigured(
                f"REACTIVE_BLOCKS['BUS'] must be a dict with a 'BACKEND' dotted path, "
                f"e.g. {DEFAULT_BUS!r}; got {bus!r}."
            )
        options = bus.get("OPTIONS", {})
        if not isinstance(options, dict):
            raise ImproperlyConfigured(
                f"REACTIVE_BLOCKS['BUS']['OPTIONS'] must be a dict, got {options!r}."
            )
        return BusSettings(bus["BACKEND"], dict(options))

    @property
    def HEARTBEAT_SECONDS(self) -> float:
        return self._positive_number("HEARTBEAT_SECONDS", 15)

    @property
    def STREAM_MAX_SECONDS(self) -> float:
        return self._positive_number("STREAM_MAX_SECONDS", 3600)

    @property
    def TOKEN_MAX_AGE_SECONDS(self) -> float:
        """How long a rendered page may keep (re)opening its stream."""
        return self._positive_number("TOKEN_MAX_AGE_SECONDS", 86_400)

    @property
    def MAX_BUFFERED_BYTES(self) -> int:
        """Bytes the server may hold unsent for one stream before it is closed."""
        return self._positive_int("MAX_BUFFERED_BYTES", 1 << 20)

    @property
    def MAX_FRAGMENT_BYTES(self) -> int:
        """The largest SSE frame one block may take; a larger block is not sent,
        the page is told to fetch it over a normal request instead."""
        value = self._positive_int("MAX_FRAGMENT_BYTES", 256 * 1024)
        if value > self.MAX_BUFFERED_BYTES:
            raise ImproperlyConfigured(
                f"REACTIVE_BLOCKS['MAX_FRAGMENT_BYTES'] is {value}, more than "
                f"MAX_BUFFERED_BYTES ({self.MAX_BUFFERED_BYTES}): such a block could "
                f"never be sent. Make it at most MAX_BUFFERED_BYTES."
            )
        return value

    @property
    def MAX_STREAMS_PER_VISITOR(self) -> int:
        """Open streams per user (or per session, when anonymous) in one process."""
        return self._positive_int("MAX_STREAMS_PER_VISITOR", 20)

    @property
    def MAX_STREAMS_PER_ADDRESS(self) -> int:
        """Open streams per client address, for visitors with no session, in one
        process (everyone behind one proxy shares an address: see the docs)."""
        return self._positive_int("MAX_STREAMS_PER_ADDRESS", 100)

    @property
    def STREAM_OPENS_PER_SECOND(self) -> float:
        """Streams one visitor may open per second, once its burst is spent."""
        return self._positive_number("STREAM_OPENS_PER_SECOND", 2.0)

    @property
    def STREAM_OPENS_BURST(self) -> int:
        """Streams one visitor may open at once (tabs opened together, a restart)."""
        return self._positive_int("STREAM_OPENS_BURST", 30)

    @property
    def MAX_STREAMS_PER_PROCESS(self) -> int:
        """Open streams one process serves; more are answered 429."""
        return self._positive_int("MAX_STREAMS_PER_PROCESS", 10_000)

    @property
    def PAGE_STREAM_PATH(self) -> str:
        """Where get_asgi_application() serves the streams of live pages."""
        return self._url_path("PAGE_STREAM_PATH", "/_reactive/page/")

    @property
    def STREAMS_PATH(self) -> str:
        """Where a browser opens the one connection that carries all its streams."""
        return self._url_path("STREAMS_PATH", "/_reactive/streams/")

    @property
    def URLCONF(self) -> str | None:
        """The module whose ``urlpatterns`` hold the ``stream_path()`` routes."""
        value = self._raw.get("URLCONF")
        if value is not None and (not isinstance(value, str) or not value):
            raise ImproperlyConfigured(
                f"REACTIVE_BLOCKS['URLCONF'] must be a dotted module path, got {value!r}."
            )
        return value

    @property
    def SCAN_INCLUDE(self) -> tuple[str, ...]:
        """Glob patterns of template names to scan for sse-swap blocks."""
        return self._strings("SCAN_INCLUDE", ("*",))

    @property
    def SCAN_EXCLUDE(self) -> tuple[str, ...]:
        """Glob patterns of template names never to scan (wins over SCAN_INCLUDE)."""
        return self._strings("SCAN_EXCLUDE", ())

    @property
    def EMITTED_PATHS(self) -> tuple[str, ...]:
        """Paths that code emits by hand; the checks warn when no block reads one."""
        paths = self._strings("EMITTED_PATHS", ())
        try:
            freeze_paths(paths, name="REACTIVE_BLOCKS['EMITTED_PATHS']")
        except ValueError as exc:
            raise ImproperlyConfigured(str(exc)) from exc
        return paths

    @property
    def INDEX_BUILDERS(self) -> tuple[str, ...]:
        """Dotted paths of ``function(index)`` run after every build of the index."""
        return self._strings("INDEX_BUILDERS", ())

    @property
    def ARGUMENT_TAGS(self) -> tuple[str, ...]:
        """Names of template tags of your own (or of other apps) that read only the
        arguments they are given, not the rest of the context: blocks using them
        are not taken to read everything."""
        return self._strings("ARGUMENT_TAGS", ())

    @property
    def AUDIENCE_SCOPES(self) -> tuple[str, ...]:
        """Scopes (glob patterns) that receive audience-filtered events."""
        return self._strings("AUDIENCE_SCOPES", ())

    @property
    def CONNECTION_SCOPES(self) -> tuple[str, ...]:
        """Scopes (glob patterns) served by streams that identify their users."""
        return self._strings("CONNECTION_SCOPES", ())

    @property
    def METRICS_PUBLIC(self) -> bool:
        """Whether anyone may read ``reactive_blocks.views.metrics`` (default: staff,
        or a scraper with ``METRICS_TOKEN``)."""
        return self._flag("METRICS_PUBLIC", False)

    @property
    def DIRECT_WRITES(self) -> bool:
        """Whether, under daphne, fragments are written straight to the socket of
        a stream when Twisted holds nothing for it (streams/outlet.py)."""
        return self._flag("DIRECT_WRITES", True)

    def _flag(self, key: str, default: bool) -> bool:
        value = self._raw.get(key, default)
        if not isinstance(value, bool):
            raise ImproperlyConfigured(
                f"REACTIVE_BLOCKS['{key}'] must be True or False, got {value!r}."
            )
        return value

    @property
    def METRICS_TOKEN(self) -> str | None:
        """A secret a scraper sends as ``Authorization: Bearer <token>`` to read the
        metrics without logging in (None: staff only)."""
        value = self._raw.get("METRICS_TOKEN")
        if value is not None and (not isinstance(value, str) or len(value) < 16):
            # Not shown: it may be most of a secret.
            shown = f"{len(value)} characters" if isinstance(value, str) else value
            raise ImproperlyConfigured(
                "REACTIVE_BLOCKS['METRICS_TOKEN'] must be a string of at least 16 "
                f"characters, or None; got {shown!r}."
            )
        return value

    def _strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self._raw.get(key, default)
        if isinstance(value, str) or not isinstance(
            value, (list, tuple, set, frozenset)
        ):
            raise ImproperlyConfigured(
                f"REACTIVE_BLOCKS[{key!r}] must be a list of strings, got {value!r}."
            )
        if not all(isinstance(item, str) and item for item in value):
            raise ImproperlyConfigured(
                f"REACTIVE_BLOCKS[{key!r}] must contain only non-empty strings, "
                f"got {value!r}."
            )
        return tuple(value)

    def _url_path(self, key: str, default: str) -> str:
        value = self._raw.get(key, default)
        if not isinstance(value, str) or not (
            value.startswith("/") and value.endswith("/") and len(value) > 2
        ):
            raise ImproperlyConfigured(
                f"REACTIVE_BLOCKS[{key!r}] must be a URL path that starts and ends "
                f"with '/', such as {default!r}; got {value!r}."
            )
        return value

    def _positive_int(self, key: str, default: int) -> int:
        value = self._raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ImproperlyConfigured(
                f"REACTIVE_BLOCKS[{key!r}] must be a positive int, got {value!r}."
            )
        return value

    def _positive_number(self, key: str, default: float) -> float:
        value = self._raw.get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value <= 0
        ):
            raise ImproperlyConfigured(
                f"REACTIVE_BLOCKS[{key!r}] must be a positive number of seconds, "
                f"got {value!r}."
            )
        return float(value)


conf = Settings()
