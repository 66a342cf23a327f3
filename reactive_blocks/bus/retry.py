"""What counts as Redis being away, and how long to wait before trying again."""

from __future__ import annotations

import asyncio
import random

from redis.exceptions import RedisError

__all__ = ["REDIS_ERRORS", "Backoff", "RedisUnavailable"]

REDIS_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


class RedisUnavailable(Exception):
    """Redis could not answer in time; the caller uses its fallback."""


class Backoff:
    """Exponential delays with jitter, so reconnecting processes do not stampede."""

    def __init__(self, base: float = 0.05, cap: float = 2.0) -> None:
        self.base, self.cap, self.failures = base, cap, 0

    def next(self) -> float:
        delay = min(self.cap, self.base * 2.0 ** min(self.failures, 30))
        self.failures += 1
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.failures = 0
