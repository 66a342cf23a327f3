"""How often one visitor may open streams: a token bucket per visitor.

Opening a stream costs the server more than serving one (a signed token checked,
a session and user loaded, ``has_permission()`` asked, presence told), so a client
that opens and closes streams in a loop would slow every other page of the
process. Each visitor (a session the stream's token was signed for, or else a
client address) may open ``burst`` streams at once and ``rate`` per second after
that; an address whose visitors have sessions gets ten times that together, so
fresh sessions do not buy fresh buckets. The table is bounded: past
``remembered`` keys the least recently seen is forgotten, and starts again full.
"""

from __future__ import annotations

import collections
import ipaddress
import math
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["OpenThrottle", "address_key"]


def address_key(scope: Any) -> str | None:
    """The client address of an ASGI scope as a visitor key (IPv6 by its /64:
    one host has them all); None when the server does not know it."""
    client = scope.get("client")
    if not client or not isinstance(client[0], str):
        return None
    host = client[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return f"address:{host}"
    if ip.version == 6:
        return f"address:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"address:{ip}"


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

    def allow(self, key: str, scale: int = 1) -> int:
        """Take one open from ``key``'s bucket (``scale`` times the burst and rate,
        for a key many visitors share): 0 if allowed, else the whole seconds to
        wait before the next one would be."""
        now = self._clock()
        burst, rate = float(self.burst * scale), self.rate * scale
        tokens, then = self._buckets.get(key, (burst, now))
        tokens = min(burst, tokens + (now - then) * rate)
        wait = 0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = max(1, math.ceil((1.0 - tokens) / rate))
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self.remembered:
            self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)
