"""The bus: change events fanned out to subscribers, in one process or across many."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reactive_blocks.bus.database import DatabaseBus
from reactive_blocks.bus.memory import ReactiveBus
from reactive_blocks.bus.presence import Viewers
from reactive_blocks.bus.state import CloseReason, Member
from reactive_blocks.bus.subscription import (
    Batch,
    Position,
    SharedSubscription,
    Subscription,
)

if TYPE_CHECKING:
    from reactive_blocks.bus.redis import RedisBus

__all__ = [
    "Batch",
    "CloseReason",
    "DatabaseBus",
    "Member",
    "Position",
    "ReactiveBus",
    "RedisBus",
    "SharedSubscription",
    "Subscription",
    "Viewers",
]


def __getattr__(name: str) -> Any:
    # Only a project that selects the Redis bus needs the redis package.
    if name == "RedisBus":
        try:
            from reactive_blocks.bus.redis import RedisBus
        except ImportError as exc:
            raise ImportError(
                f"reactive_blocks.RedisBus needs the redis package ({exc}); install "
                f"it with: pip install 'reactive-blocks[redis]'"
            ) from exc
        return RedisBus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
