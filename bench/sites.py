"""What the two benchmark sites share, so they serve the same thing."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path


def database(folder: Path) -> dict[str, Any]:
    """SQLite at BENCH_DATABASE, set up as a production site would run it: WAL
    (readers do not wait for writers, a commit does not wait for the disk twice),
    persistent connections, and waiting for the lock (several writers)."""
    options: dict[str, Any] = {"timeout": 20}
    if os.environ.get("BENCH_SQLITE") != "defaults":  # else: as Django sets it up
        options["init_command"] = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    return {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("BENCH_DATABASE", folder / "bench.sqlite3"),
            "CONN_MAX_AGE": 600,
            "OPTIONS": options,
        }
    }


def stamped_title(number: int) -> str:
    """A title that carries the time of its commit.

    ``time.monotonic()`` is one clock for every process of the machine, so a
    reader subtracts it from its own to get the change-to-fragment latency.
    """
    return f"{number} {time.monotonic():.6f}"
