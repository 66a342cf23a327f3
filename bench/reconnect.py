"""A reconnect storm: a server with 2,000 open streams restarts.

Run with ``make bench`` or ``python bench/reconnect.py [--streams 2000] [--runs 3]``.
One daphne process serves bench/site (the stream class ``ItemStream``). This
process holds ``--streams`` tabs, each with the one connection reactive.js opens
(a POST to ``STREAMS_PATH`` carrying the item's stream), and reconnects them as
reactive.js does: after a failure, 0.5 s plus a random part of a window of 6 s
that doubles with each failure in a row (up to 60 s), asking each stream to resume
after the last event it got. The server is stopped (SIGTERM) and started again on
the same port. Printed, medians of ``--runs`` runs:

* how the reconnects spread once the new server listens: first, 10th, 50th and
  90th percentile, last, and the spread (last minus first);
* the worst time a page request took, made every 0.1 s during the storm (does the
  server stay responsive?);
* how many tabs reconnected, and how many then showed a change saved once all had
  (the server's bus started afresh, so every tab is sent the whole block).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

from bench.drive import Server  # noqa: E402
from tests.live_server import served  # noqa: E402

SETTINGS = "bench.site.settings"
APPLICATION = "bench.site.pages_asgi:application"
# reactive.js's backoff, in seconds.
MIN_DELAY, FIRST_WINDOW, MAX_WINDOW = 0.5, 6.0, 60.0
STORM_DEADLINE = 120.0


class Tab:
    """One browser tab's connection, reconnecting as reactive.js does."""

    def __init__(self, number: int, host: str, port: int) -> None:
        self.url = f"/live/items/1/?connection=tab-{number}"
        self.host, self.port = host, port
        self.last: str | None = None
        self.connected: list[float] = []  # when each connection began to stream
        self.shown = -1  # the number of the last change shown
        self.stopped = False
        self.changed = asyncio.Event()

    async def run(self) -> None:
        failures = 0
        while not self.stopped:
            with contextlib.suppress(
                OSError, EOFError, ValueError, asyncio.IncompleteReadError
            ):
                await self._stream()
            if self.stopped:
                return
            failures += 1
            window = min(MAX_WINDOW, FIRST_WINDOW * 2 ** (failures - 1))
            # The policy under test, not a wait for async work.
            await asyncio.sleep(MIN_DELAY + random.random() * window)
            if self.connected and time.monotonic() - self.connected[-1] > 10:
                failures = 0

    async def _stream(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            body = json.dumps({"streams": [{"url": self.url, "last": self.last}]})
            writer.write(
                (
                    f"POST /_reactive/streams/ HTTP/1.1\r\nHost: {self.host}\r\n"
                    f"Content-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n{body}"
                ).encode()
            )
            await writer.drain()
            status = await reader.readline()
            if b" 200 " not in status:
                raise ValueError(status)
            while True:
                line = await reader.readline()
                if not line:
                    raise EOFError
                if line.startswith(b"event: reactive-channel"):
                    if not self.connected or self.connected[-1] < self.opened:
                        self.connected.append(time.monotonic())
                elif line.startswith(b"id: "):
                    self.last = line[4:].strip().decode()
                elif b'item-title">' in line:
                    title = line.split(b'item-title">', 1)[1].split(b"<", 1)[0]
                    self.shown = int(title.split()[0])
                    self.changed.set()
        finally:
            writer.close()

    opened = 0.0  # set when the storm's server starts: connections after it count


async def probe(host: str, port: int, until: asyncio.Event) -> list[float]:
    """The time a page request takes, every 0.1 s until ``until``."""
    took = []
    while not until.is_set():
        started = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(f"GET /items/1/ HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            await reader.read()
            writer.close()
            took.append(time.monotonic() - started)
        except OSError:
            pass
        await asyncio.sleep(0.1)  # the probe's pace
    return took


async def wait_until(condition: Any, seconds: float) -> bool:
    """Poll ``condition`` (a count over thousands of tabs) until true or late."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def storm(server: Server, count: int) -> dict[str, Any]:
    with served(APPLICATION, SETTINGS, server.env) as (url, _):
        host, port = "127.0.0.1", int(url.rsplit(":", 1)[1])
        tabs = [Tab(number, host, port) for number in range(count)]
        tasks = [asyncio.create_task(tab.run()) for tab in tabs]
        if not await wait_until(lambda: all(t.connected for t in tabs), STORM_DEADLINE):
            raise RuntimeError("the tabs did not all connect")
    # The first server has stopped: every tab's connection has failed.
    with served(APPLICATION, SETTINGS, server.env, port) as (url, _process):
        listening = time.monotonic()
        for tab in tabs:
            tab.opened = listening
        done = asyncio.Event()
        probing = asyncio.create_task(probe(host, port, done))
        await wait_until(
            lambda: all(t.connected and t.connected[-1] >= listening for t in tabs),
            STORM_DEADLINE,
        )
        done.set()
        took = await probing
        back = [
            t.connected[-1] - listening for t in tabs if t.connected[-1] >= listening
        ]
        # A change once all are back: does every page converge?
        for tab in tabs:
            tab.changed.clear()
        request = json.dumps({"n": 7}).encode()
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(
            f"POST /save/1/ HTTP/1.0\r\nHost: {host}\r\nContent-Length: {len(request)}"
            f"\r\n\r\n".encode()
            + request
        )
        await reader.read()
        writer.close()
        await wait_until(lambda: all(t.shown == 7 for t in tabs), 60)
        converged = sum(t.shown == 7 for t in tabs)
        for tab in tabs:
            tab.stopped = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "first": min(back),
        "p10": percentile(back, 0.1),
        "p50": percentile(back, 0.5),
        "p90": percentile(back, 0.9),
        "last": max(back),
        "spread": max(back) - min(back),
        "worst_page": max(took) if took else float("nan"),
        "reconnected": len(back),
        "converged": converged,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            env = {"BENCH_DATABASE": str(Path(folder) / "bench.sqlite3")}
            server = Server(SETTINGS, APPLICATION, env)
            try:
                results.append(asyncio.run(storm(server, args.streams)))
            finally:
                server.close()
    median = {key: statistics.median(r[key] for r in results) for key in results[0]}
    print(f"Reconnect storm: {args.streams} open streams, their server restarted")
    print(f"(medians of {args.runs} runs; seconds after the new server listened)")
    print(
        f"  reconnects: first {median['first']:.2f} s, p10 {median['p10']:.2f} s, "
        f"p50 {median['p50']:.2f} s, p90 {median['p90']:.2f} s, "
        f"last {median['last']:.2f} s: spread over {median['spread']:.1f} s"
    )
    print(
        f"  slowest page request during the storm: {median['worst_page'] * 1000:.0f} ms"
    )
    print(
        f"  reconnected {median['reconnected']:.0f} of {args.streams}; "
        f"{median['converged']:.0f} showed the change saved after"
    )


if __name__ == "__main__":
    main()
