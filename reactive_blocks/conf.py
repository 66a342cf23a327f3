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

__all__ = ["BusSettings", "conf"]

DEFAULT_BUS = {"BACKEND": "reactive_blocks.ReactiveBus", "OPTIONS": {"maxsize": 256}}
KNOWN_KEYS = frozenset({"BUS", "HEARTBEAT_SECONDS", "STREAM_MAX_SECONDS"})


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
