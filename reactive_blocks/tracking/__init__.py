"""Model tracking: saves, deletes and m2m changes become change events after commit."""

from __future__ import annotations

from reactive_blocks.tracking.commit import emit
from reactive_blocks.tracking.registry import Tracker, tracker_for, trackers, untrack
from reactive_blocks.tracking.track import track, tracked_update

__all__ = [
    "Tracker",
    "emit",
    "track",
    "tracked_update",
    "tracker_for",
    "trackers",
    "untrack",
]
