"""What a client opening streams in a loop costs everyone else.

Run with ``python bench/churn.py``. It serves the test suite's live project with
daphne twice: once with the default open rate (``STREAM_OPENS_BURST`` 30,
``STREAM_OPENS_PER_SECOND`` 2) and once with no open rate at all (how it was
before), and for each measures a signed-in reader's latency (a change posted ->
its fragment read) while nothing else happens, then while three threads open
anonymous streams and drop them at once, as fast as they can, for the same
number of changes. Prints medians over ``--runs`` runs: latency p50 and p90 for
the quiet and the churned phase, the opens answered 200 and 429 per second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from tests.live_project import Live, live_project  # noqa: E402
from tests.sse_client import SSEStream  # noqa: E402

THREADS = 3
CHANGES = 40
INTERVAL = 0.1  # seconds between the reader's changes


def churn(url: str, stop: threading.Event, statuses: list[int]) -> None:
    """Open a stream and drop it at once, until ``stop`` (bounded by CHANGES)."""
    parts = urlsplit(url)
    request = (
        f"GET {parts.path}?{parts.query} HTTP/1.0\r\nHost: {parts.netloc}\r\n\r\n"
    ).encode()
    while not stop.is_set():
        with socket.create_connection((parts.hostname, parts.port), timeout=10) as s:
            s.sendall(request)
            head = s.recv(64).split()
        statuses.append(int(head[1]) if len(head) > 1 else 0)


async def latencies(live: Live, stream: SSEStream, tag: str) -> list[float]:
    found = []
    for number in range(CHANGES):
        title = f"{tag} {number}"
        started = time.perf_counter()
        await asyncio.to_thread(live.change, set={"title": title}, paths=["doc.title"])
        while (event := await stream.next_event()).event != "title" or (
            event.data != title
        ):
            pass
        found.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(INTERVAL)
    return found


async def one_run(live: Live) -> dict[str, float]:
    live.reset()
    cookie, _ = live.login("reader")
    stream = await SSEStream.open(live.page(1, cookie)[0], {"Cookie": cookie})
    quiet = await latencies(live, stream, "quiet")
    stop, statuses = threading.Event(), []
    url = live.page(1)[0]
    threads = [
        threading.Thread(target=churn, args=(url, stop, statuses))
        for _ in range(THREADS)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    try:
        churned = await latencies(live, stream, "churned")
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    elapsed = time.perf_counter() - started
    await stream.close()
    return {
        "quiet p50": statistics.median(quiet),
        "quiet p90": statistics.quantiles(quiet, n=10)[-1],
        "churn p50": statistics.median(churned),
        "churn p90": statistics.quantiles(churned, n=10)[-1],
        "200/s": statuses.count(200) / elapsed,
        "429/s": statuses.count(429) / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    setups = {
        "open rate on (defaults)": {
            "LIVE_OPENS_BURST": "30",
            "LIVE_PER_ADDRESS": "100",
        },
        "open rate off": {"LIVE_OPENS_BURST": "100000000", "LIVE_PER_ADDRESS": "10000"},
    }
    print(f"nproc {os.cpu_count()}; {THREADS} churning threads; {CHANGES} changes")
    for name, knobs in setups.items():
        with (
            tempfile.TemporaryDirectory() as folder,
            live_project(Path(folder), **knobs) as live,
        ):
            runs = [asyncio.run(one_run(live)) for _ in range(args.runs)]
        medians = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        print(
            f"{name:26} "
            + "  ".join(f"{key} {value:8.1f}" for key, value in medians.items())
            + "   (ms; opens per second)"
        )


if __name__ == "__main__":
    main()
