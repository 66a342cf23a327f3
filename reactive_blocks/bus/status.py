"""What each process says about itself, for ``manage.py reactive_status``.

A process that uses the bus reports every ``STATUS_SECONDS`` where the other
processes can read it (Redis, or the database of the default bus); a report older
than ``STATUS_TTL_SECONDS`` is a process that is gone. A report is bounded: the
scopes with most connections, not all of them.
"""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from reactive_blocks.bus.fanout import Fanout

__all__ = ["STATUS_SECONDS", "STATUS_TTL_SECONDS", "process_name", "process_report"]

STATUS_SECONDS = 5.0
STATUS_TTL_SECONDS = 3 * STATUS_SECONDS  # three missed reports: gone
MAX_SCOPES = 20  # the busiest scopes of a process, in its report

_STARTED = time.time()


def process_name() -> str:
    """Names this process in reports: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def process_report(
    backend: str,
    fanout: Fanout,
    health: dict[str, Any],
    source: Callable[[], dict[str, Any]] | None,
) -> dict[str, Any]:
    """This process's report: who it is, its bus's health, the scopes it serves
    and, from the streams layer (``source``), its streams."""
    scopes = fanout.summary()
    report: dict[str, Any] = {
        "process": process_name(),
        "pid": os.getpid(),
        "started": round(_STARTED, 3),
        "reported": round(time.time(), 3),
        "backend": backend,
        "bus": health,
        "scope_count": len(scopes),
        "scopes": [
            {"scope": scope, "subscribers": subscribers, "connections": connections}
            for scope, subscribers, connections in scopes[:MAX_SCOPES]
        ],
        "streams": None,
    }
    if source is not None:
        try:
            report["streams"] = source()
        except Exception as exc:  # a report never fails the bus's thread
            report["streams"] = {"error": repr(exc)[:200]}
    return report
