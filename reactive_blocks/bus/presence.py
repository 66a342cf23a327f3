"""Who is watching a scope: viewers counted once per user, and presence changes that
re-render a "who's viewing" block by themselves, one change per burst."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reactive_blocks.events import ChangeEvent
from reactive_blocks.paths import validate_path

if TYPE_CHECKING:
    from collections.abc import Iterable

    from reactive_blocks.events import ConnectionInfo

__all__ = ["PresenceChanges", "Viewers", "call_later", "check_presence_options"]

# Joins (and leaves, once their grace is over) closer together than this are sent
# as one change.
DEBOUNCE_SECONDS = 0.2
# At most one presence change per scope this often: streams opened and closed in a
# loop must not re-render every viewer's presence blocks at their pace.
MIN_INTERVAL_SECONDS = 1.0
# Scopes whose last announcement is remembered (for MIN_INTERVAL_SECONDS).
REMEMBERED_SCOPES = 10_000
# A leaving connection stays listed this long when presence changes are emitted,
# so that a reload (leave, then join a second later) does not flicker the list.
DEFAULT_GRACE_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class Viewers:
    """The distinct people watching a scope: three tabs of one user are one viewer.

    ``users`` are user ids in the order they arrived; ``anonymous`` counts the
    connections of visitors who are not signed in (one per tab).
    """

    users: tuple[str, ...]
    anonymous: int

    def __len__(self) -> int:
        return len(self.users) + self.anonymous

    @classmethod
    def of(cls, connections: Iterable[ConnectionInfo]) -> Viewers:
        ordered = sorted(connections, key=lambda c: c.connected_at)
        users = dict.fromkeys(c.user_id for c in ordered if c.user_id is not None)
        anonymous = sum(1 for c in ordered if c.user_id is None)
        return cls(tuple(users), anonymous)


def check_presence_options(path: object, grace: object) -> tuple[str | None, float]:
    """Validate the ``presence_path``/``presence_grace`` options of a bus."""
    if path is not None:
        validate_path(path, name="presence_path")
    if grace is None:
        return (None if path is None else str(path)), (
            0.0 if path is None else DEFAULT_GRACE_SECONDS
        )
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or grace < 0:
        raise ValueError(
            f"presence_grace must be a non-negative number of seconds, got {grace!r}."
        )
    return (None if path is None else str(path)), float(grace)


Cancel = Callable[[], None]
CallLater = Callable[[float, Callable[[], None]], Cancel]


def call_later(delay: float, callback: Callable[[], None]) -> Cancel:
    """Run ``callback`` after ``delay`` seconds: on the running event loop if there
    is one (where streams join and leave), else on a timer thread."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        timer = threading.Timer(delay, callback)
        timer.daemon = True
        timer.start()
        return timer.cancel
    return loop.call_later(delay, callback).cancel


class PresenceChanges:
    """Emits ``ChangeEvent(scope, {path})`` after joins and leaves, merged per burst.

    A join is announced after a short debounce; a leave once its grace is over
    (the connection is listed until then); and never sooner than
    ``MIN_INTERVAL_SECONDS`` after the scope's last announcement. Each scope has at
    most one timer, set for its earliest pending announcement.
    """

    def __init__(
        self,
        path: str,
        grace: float,
        emit: Callable[[ChangeEvent], None],
        later: CallLater = call_later,
    ) -> None:
        self.path = path
        self.grace = grace
        self._emit = emit
        self._later = later
        # Re-entrant: a subscription garbage-collected while this thread holds
        # the lock reports its leave through the same lock.
        self._lock = threading.RLock()
        self._due: dict[str, list[float]] = {}  # pending announcement times
        self._timers: dict[str, tuple[float, Cancel]] = {}
        # When each scope was last announced (the most recent scopes only).
        self._fired: collections.OrderedDict[str, float] = collections.OrderedDict()

    def joined(self, scope: str) -> None:
        self._schedule(scope, DEBOUNCE_SECONDS)

    def left(self, scope: str) -> None:
        self._schedule(scope, self.grace + DEBOUNCE_SECONDS)

    def cancel(self) -> None:
        """Forget every pending announcement (the bus is closing)."""
        with self._lock:
            timers, self._timers, self._due = self._timers, {}, {}
            self._fired.clear()
        for _, cancel in timers.values():
            cancel()

    def _schedule(self, scope: str, delay: float) -> None:
        due = time.monotonic() + delay
        with self._lock:
            dues = self._due.setdefault(scope, [])
            # An announcement already due about then covers this one too.
            if not any(abs(d - due) < DEBOUNCE_SECONDS for d in dues):
                dues.append(due)
            self._arm(scope)

    def _arm(self, scope: str) -> None:
        dues = self._due.get(scope)
        if not dues:
            self._due.pop(scope, None)
            return
        first = min(dues)
        last = self._fired.get(scope)
        if last is not None:
            first = max(first, last + MIN_INTERVAL_SECONDS)
        timer = self._timers.get(scope)
        if timer is not None:
            if timer[0] <= first:
                return
            timer[1]()
        cancel = self._later(
            max(0.0, first - time.monotonic()), lambda: self._fire(scope)
        )
        self._timers[scope] = (first, cancel)

    def _fire(self, scope: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._timers.pop(scope, None)
            self._fired[scope] = now
            self._fired.move_to_end(scope)
            if len(self._fired) > REMEMBERED_SCOPES:
                self._fired.popitem(last=False)
            dues = [
                d for d in self._due.get(scope, ()) if d > now + DEBOUNCE_SECONDS / 4
            ]
            self._due[scope] = dues
            self._arm(scope)
        # Who watches changed, no row of any list: keyed lists are not redrawn.
        self._emit(ChangeEvent(scope, frozenset({self.path}), rows=frozenset()))
