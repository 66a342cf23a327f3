"""The bus: change events fanned out to subscribers, in one process or across many."""

from __future__ import annotations

from reactive_blocks.bus.memory import ReactiveBus
from reactive_blocks.bus.subscription import Batch, CloseReason, Subscription

__all__ = ["Batch", "CloseReason", "ReactiveBus", "Subscription"]
