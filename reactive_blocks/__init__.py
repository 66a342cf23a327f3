"""Live server-rendered Django template blocks, pushed over Server-Sent Events."""

from __future__ import annotations

from reactive_blocks.bus import Batch, CloseReason, ReactiveBus, Subscription
from reactive_blocks.events import ChangeEvent, ConnectionInfo
from reactive_blocks.index import BlockRef, DependencyIndex
from reactive_blocks.runtime import get_bus, get_index

__all__ = [
    "Batch",
    "BlockRef",
    "ChangeEvent",
    "CloseReason",
    "ConnectionInfo",
    "DependencyIndex",
    "ReactiveBus",
    "Subscription",
    "get_bus",
    "get_index",
]
