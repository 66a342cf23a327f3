"""What the benchmark scripts share: servers to start, saves to make, /proc to read."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent

from tests.live_server import served  # noqa: E402

__all__ = ["ROOT", "Server", "cpu_seconds", "get", "rss_kib", "save_all"]

WRITERS = 4  # request threads saving at once, so one slow save does not pace all


class Server:
    """A migrated database and daphne processes serving one benchmark site."""

    def __init__(
        self, settings: str | None, application: str, env: dict[str, str]
    ) -> None:
        """``settings`` None: an application without Django (bench/floor.py)."""
        self.stack = contextlib.ExitStack()
        self.settings = settings or "-"
        self.application = application
        self.env = {
            **env,
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": self.settings,
        }
        if settings is None:
            return
        self.manage("migrate", "--run-syncdb", "--noinput", "-v0")
        app = settings.rsplit(".", 1)[0]
        self.manage(
            "shell", "-c", f"from {app}.models import Item; Item.objects.create()"
        )

    def manage(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "django", *args],
            cwd=ROOT,
            env={**os.environ, **self.env},
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> tuple[str, int]:
        """Start one more daphne process: (base URL, PID)."""
        url, process = self.stack.enter_context(
            served(self.application, self.settings, self.env)
        )
        return url, process.pid

    def close(self) -> None:
        self.stack.close()


def get(url: str) -> str:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
    body = connection.getresponse().read().decode()
    connection.close()
    return body


def _save(connection: http.client.HTTPConnection, number: int) -> float:
    """Save change ``number``; return its commit time (from the title)."""
    connection.request("POST", "/save/1/", body=json.dumps({"n": number}).encode())
    reply: dict[str, Any] = json.loads(connection.getresponse().read())
    return float(reply["title"].split()[1])


def _save_at(
    url: str, rate: float, numbers: range, start: float, commits: list[float]
) -> None:
    connection = http.client.HTTPConnection(urlsplit(url).netloc, timeout=30)
    for step, number in enumerate(numbers):
        delay = start + step / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing the load, not waiting for async work
        commits[number] = _save(connection, number)
    connection.close()


def save_all(url: str, rate: float, count: int) -> tuple[float, list[float]]:
    """Save ``count`` changes at ``rate``/s from several threads, then change
    ``count`` (the final state) last of all. Returns how long the ``count`` changes
    took, and the commit time of each of the ``count + 1`` changes."""
    commits = [0.0] * (count + 1)
    started = time.monotonic()
    writers = [
        threading.Thread(
            target=_save_at,
            # Each writer a step after the other: changes come evenly, not in fours.
            args=(
                url,
                rate / WRITERS,
                range(w, count, WRITERS),
                started + w / rate,
                commits,
            ),
        )
        for w in range(WRITERS)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(300)
    elapsed = time.monotonic() - started
    last = http.client.HTTPConnection(urlsplit(url).netloc, timeout=30)
    commits[count] = _save(last, count)
    last.close()
    return elapsed, commits


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))
