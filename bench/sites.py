"""What the two benchmark sites share, so they serve the same thing."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path


def database(folder: Path) -> dict[str, Any]:
    """SQLite at BENCH_DATABASE, waiting for the lock (several writers)."""
    return {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("BENCH_DATABASE", folder / "bench.sqlite3"),
            "OPTIONS": {"timeout": 20},
        }
    }


def stamped_title(number: int) -> str:
    """A title that carries the time of its commit.

    ``time.monotonic()`` is one clock for every process of the machine, so a
    reader subtracts it from its own to get the change-to-fragment latency.
    """
    return f"{number} {time.monotonic():.6f}"
