"""Live server-rendered Django template blocks, pushed over Server-Sent Events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reactive_blocks.bus import (
    Batch,
    CloseReason,
    DatabaseBus,
    Position,
    ReactiveBus,
    Subscription,
    Viewers,
)
from reactive_blocks.events import ChangeEvent, ConnectionInfo
from reactive_blocks.index.core import BlockRef, DependencyIndex
from reactive_blocks.pages.connect import no_rerun
from reactive_blocks.runtime import get_bus, get_index
from reactive_blocks.streams.stream import Fragment, reactive_stream
from reactive_blocks.tracking.commit import emit
from reactive_blocks.tracking.track import track, tracked_update

if TYPE_CHECKING:
    from reactive_blocks.bus.redis import RedisBus

__all__ = [
    "Batch",
    "BlockRef",
    "ChangeEvent",
    "CloseReason",
    "ConnectionInfo",
    "DatabaseBus",
    "DependencyIndex",
    "Fragment",
    "Position",
    "ReactiveBus",
    "RedisBus",
    "Subscription",
    "Viewers",
    "emit",
    "get_bus",
    "get_index",
    "no_rerun",
    "reactive_stream",
    "track",
    "tracked_update",
]


def __getattr__(name: str) -> Any:
    if name == "RedisBus":  # imported on demand: only it needs the redis package
        from reactive_blocks import bus

        return bus.RedisBus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
