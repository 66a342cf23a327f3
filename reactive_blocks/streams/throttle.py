"""How often one visitor may open streams: a token bucket per visitor.

Opening a stream costs the server more than serving one (a signed token checked,
a session and user loaded, ``has_permission()`` asked, presence told), so a client
that opens and closes streams in a loop would slow every other page of the
process. Each visitor (a session the stream's token was signed for, or else a
client address) may open ``burst`` streams at once and ``rate`` per second after
that. The table is bounded: past ``remembered`` visitors the least recently seen
is forgotten, and starts again with a full bucket.
"""

from __future__ import annotations

import collections
import math
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["OpenThrottle"]


class OpenThrottle:
    """Token buckets of stream opens, by visitor key."""

    def __init__(
        self,
        rate: float,
        burst: int,
        remembered: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate, self.burst, self.remembered = rate, burst, remembered
        self._clock = clock
        # key -> (tokens left, when they were counted)
        self._buckets: collections.OrderedDict[str, tuple[float, float]] = (
            collections.OrderedDict()
        )

    def allow(self, key: str) -> int:
        """Take one open from ``key``'s bucket: 0 if allowed, else the whole seconds
        to wait before the next one would be."""
        now = self._clock()
        tokens, then = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        wait = 0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = max(1, math.ceil((1.0 - tokens) / self.rate))
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self.remembered:
            self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)
