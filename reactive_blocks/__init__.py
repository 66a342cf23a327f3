"""Live server-rendered Django template blocks, pushed over Server-Sent Events."""

from __future__ import annotations

from reactive_blocks.bus.memory import Batch, CloseReason, ReactiveBus, Subscription
from reactive_blocks.events import ChangeEvent, ConnectionInfo
from reactive_blocks.index.core import BlockRef, DependencyIndex
from reactive_blocks.runtime import get_bus, get_index
from reactive_blocks.streams.stream import Fragment, reactive_stream
from reactive_blocks.tracking.commit import emit
from reactive_blocks.tracking.track import track, tracked_update

__all__ = [
    "Batch",
    "BlockRef",
    "ChangeEvent",
    "CloseReason",
    "ConnectionInfo",
    "DependencyIndex",
    "Fragment",
    "ReactiveBus",
    "Subscription",
    "emit",
    "get_bus",
    "get_index",
    "reactive_stream",
    "track",
    "tracked_update",
]
