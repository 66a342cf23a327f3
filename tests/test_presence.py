"""Presence changes: merged per burst, and never more often than once a second."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reactive_blocks.bus.presence import (
    DEBOUNCE_SECONDS,
    MIN_INTERVAL_SECONDS,
    PresenceChanges,
)

if TYPE_CHECKING:
    from reactive_blocks.events import ChangeEvent


class Timers:
    """A ``call_later`` that only records: the test fires the timers itself."""

    def __init__(self) -> None:
        self.pending: list[tuple[float, object]] = []

    def __call__(self, delay, callback):
        entry = (delay, callback)
        self.pending.append(entry)
        return lambda: self.pending.remove(entry)

    def fire(self) -> None:
        (_, callback), *self.pending = self.pending
        callback()


def test_a_join_is_announced_after_the_debounce():
    emitted: list[ChangeEvent] = []
    timers = Timers()
    changes = PresenceChanges("presence", 0.0, emitted.append, timers)
    changes.joined("doc-1")
    changes.joined("doc-1")  # the same burst
    assert [round(delay, 1) for delay, _ in timers.pending] == [DEBOUNCE_SECONDS]
    timers.fire()
    assert [e.changed_paths for e in emitted] == [frozenset({"presence"})]
    # Who watches changed, no row: a keyed list beside it is not redrawn.
    assert emitted[0].rows == frozenset()


def test_streams_opened_in_a_loop_are_announced_once_a_second_at_most():
    emitted: list[ChangeEvent] = []
    timers = Timers()
    changes = PresenceChanges("presence", 0.0, emitted.append, timers)
    changes.joined("doc-1")
    timers.fire()
    for _ in range(50):  # churn: opens and closes right after an announcement
        changes.joined("doc-1")
        changes.left("doc-1")
    ((delay, _),) = timers.pending  # one timer for all of them
    assert delay > MIN_INTERVAL_SECONDS - DEBOUNCE_SECONDS
    timers.fire()
    assert len(emitted) == 2
    # Another scope is not held back by this one's announcements.
    changes.joined("doc-2")
    assert round(timers.pending[-1][0], 1) == DEBOUNCE_SECONDS
