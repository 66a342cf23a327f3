"""Wait for a condition with a deadline, instead of sleeping for a guessed time."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

TIMEOUT = 5.0


async def eventually(predicate: Callable[[], bool], limit: float = TIMEOUT) -> None:
    """Yield to the event loop until ``predicate()`` holds; fail after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {limit}s: {predicate}")
        await asyncio.sleep(0)
