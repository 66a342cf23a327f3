"""The project's bus and dependency index: built on first use, dropped on reset.

(The stream hubs that use them are ``reactive_blocks.streams.hubs.get_hubs()``.)

``reset()`` runs when ``REACTIVE_BLOCKS`` changes (``override_settings``), so
tests get a fresh bus without touching module state themselves.
"""

from __future__ import annotations

import threading
import warnings
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from reactive_blocks.bus.memory import ReactiveBus
from reactive_blocks.conf import conf
from reactive_blocks.index.core import DependencyIndex

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "get_bus",
    "get_index",
    "reset",
    "reset_bus",
    "reset_index",
]

_lock = threading.Lock()
_bus: ReactiveBus | None = None
_index: DependencyIndex | None = None


def get_bus() -> ReactiveBus:
    """The bus configured by ``REACTIVE_BLOCKS['BUS']``, one per process."""
    global _bus
    with _lock:
        if _bus is None:
            _bus = _build_bus()
        return _bus


def get_index() -> DependencyIndex:
    """The project's dependency index, built from its templates on first use."""
    global _index
    with _lock:
        if _index is None:
            from reactive_blocks.index.scan import build_index

            index = build_index(
                DependencyIndex(), include=conf.SCAN_INCLUDE, exclude=conf.SCAN_EXCLUDE
            )
            # Registrations made in code (derive(), register_template()) are made
            # again after every build, so a rebuild never loses them.
            for dotted in conf.INDEX_BUILDERS:
                _builder(dotted)(index)
            _index = index
        return _index


def _builder(dotted: str) -> Callable[[DependencyIndex], object]:
    try:
        builder = import_string(dotted)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"REACTIVE_BLOCKS['INDEX_BUILDERS'] names {dotted!r}, which cannot be "
            f"imported: {exc}"
        ) from exc
    if not callable(builder):
        raise ImproperlyConfigured(
            f"REACTIVE_BLOCKS['INDEX_BUILDERS'] names {dotted!r}, which is not a "
            f"function taking the index."
        )
    result: Callable[[DependencyIndex], object] = builder
    return result


def reset() -> None:
    """Close and forget the bus and the index; the next use builds new ones."""
    reset_bus()
    reset_index()


def reset_bus() -> None:
    """Close and forget the bus (settings changed)."""
    global _bus
    with _lock:
        bus, _bus = _bus, None
    if bus is not None:
        bus.close()


def reset_index() -> None:
    """Forget the index (templates or settings changed); the next use rescans."""
    global _index
    with _lock:
        _index = None


def _build_bus() -> ReactiveBus:
    bus_settings = conf.BUS
    try:
        backend = import_string(bus_settings.backend)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"REACTIVE_BLOCKS['BUS']['BACKEND'] {bus_settings.backend!r} cannot be "
            f"imported: {exc}"
        ) from exc
    if not (isinstance(backend, type) and issubclass(backend, ReactiveBus)):
        raise ImproperlyConfigured(
            f"REACTIVE_BLOCKS['BUS']['BACKEND'] {bus_settings.backend!r} is not a "
            f"ReactiveBus subclass."
        )
    try:
        return backend(**bus_settings.options)
    except (TypeError, ValueError) as exc:
        shown = {
            key: "***" if _secret(key) else value
            for key, value in bus_settings.options.items()
        }
        raise ImproperlyConfigured(
            f"REACTIVE_BLOCKS['BUS']['OPTIONS'] {shown!r} do not suit "
            f"{bus_settings.backend}: {exc}"
        ) from exc


def _secret(option: str) -> bool:
    """Options whose values must not appear in error messages."""
    return option in {"url", "password", "sentinel_kwargs"} or "password" in option


def __getattr__(name: str) -> Any:
    # get_hubs() was here first; it lives with the hubs now.
    if name == "get_hubs":
        warnings.warn(
            "reactive_blocks.runtime.get_hubs has moved to "
            "reactive_blocks.streams.hubs.get_hubs.",
            DeprecationWarning,
            stacklevel=2,
        )
        return import_module("reactive_blocks.streams.hubs").get_hubs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
