"""The load generator of bench/e2e.py: many SSE connections in one process.

Run by bench/e2e.py, never by hand: ``loadgen.py URL N``. It opens N streams, prints
``READY`` once all have their response headers, and reads. On stdin it is then given
a JSON object: the commit time of every change, by number (the last is the final
state), and a deadline; it waits until every stream has shown the final change or the
deadline passes. It prints one JSON line: percentiles of the fragment latency (receive
time minus the commit time carried in the fragment), of the staleness (for every
stream and change, how long until the stream showed that change or a later one), how
many streams reached the final change and how long the last took, and its own CPU
time. Given ``{"hold": seconds}`` instead, it keeps the streams open and idle that
long and prints how many are still open and how many heartbeats they received.

It shares the machine's cores with the server it measures, so it is kept cheap:
reading is done in ``data_received`` with one regular expression over each chunk,
on uvloop's event loop (``BENCH_LOOP=asyncio``: asyncio's own). With asyncio's loop
it took 94 % of a core at 20,000 fragments/s, and the server's staleness measured
its queue for the other core; with uvloop it takes 45 %.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import sys
import time
from urllib.parse import urlsplit

import uvloop

# The item's title, "<number> <monotonic commit time>", in either site's fragment
# (django-eventstream sends it inside a JSON string, so quotes are escaped).
TITLE = re.compile(rb'item-title\\?">(\d+) (\d+\.\d+)<')
PING = b": ping\n"  # reactive_blocks' heartbeat
TAIL = 200  # bytes kept between chunks, so a title split across two is found


class Stream(asyncio.Protocol):
    def __init__(self, request: bytes, final: list[int], ready: asyncio.Event) -> None:
        self.request = request
        self.final = final  # one-element box: the number of the last change
        self.ready = ready
        self.headers_seen = False
        self.buffer = b""
        self.latencies: list[float] = []
        self.shown: list[tuple[int, float]] = []  # (number, receive time)
        self.last = -1
        self.pings = 0
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if not self.headers_seen:
            if b"\r\n\r\n" not in self.buffer + data:
                self.buffer += data
                return
            self.headers_seen = True
            self.ready.set()
        chunk = self.buffer + data
        self.pings += data.count(PING)
        for match in TITLE.finditer(chunk):
            if match.end() <= len(self.buffer):
                continue  # seen with the previous chunk
            number = int(match.group(1))
            self.latencies.append(now - float(match.group(2)))
            self.shown.append((number, now))
            self.last = max(self.last, number)
        self.buffer = chunk[-TAIL:]
        if self.last >= self.final[0] >= 0 and not self.done.done():
            self.done.set_result(True)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(False)


def requests(url: str, count: int) -> list[tuple[str, int, bytes]]:
    """(host, port, request) of each stream: ``count`` of ``url``, or, with
    ``url`` naming a file of "URL<tab>Cookie" lines, one per line."""
    if not url.startswith("http"):
        with open(url) as lines:
            targets = [line.rstrip("\n").split("\t") for line in lines if line.strip()]
    else:
        targets = [[url, ""]] * count
    made = []
    for target_url, cookie in targets:
        parts = urlsplit(target_url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        header = f"Cookie: {cookie}\r\n" if cookie else ""
        request = (
            f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Accept: text/event-stream\r\n{header}\r\n"
        ).encode()
        made.append((parts.hostname or "127.0.0.1", parts.port or 80, request))
    return made


async def main(url: str, count: int) -> None:
    loop = asyncio.get_running_loop()
    final = [-1]
    streams = []
    for host, port, request in requests(url, count):
        ready = asyncio.Event()
        _, stream = await loop.create_connection(
            lambda ready=ready, request=request: Stream(request, final, ready),
            host,
            port,
        )
        await asyncio.wait_for(ready.wait(), 30)
        streams.append(stream)
    print("READY", flush=True)
    started = time.process_time()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    order = json.loads(line)
    if "hold" in order:
        await asyncio.sleep(order["hold"])  # idle streams: only heartbeats come
        open_ = sum(not s.done.done() for s in streams)
        pings = sum(s.pings for s in streams)
        print(json.dumps({"open": open_, "pings": pings}), flush=True)
        return
    commits, deadline = order["commits"], order["deadline"]
    final[0] = last = len(commits) - 1
    for stream in streams:
        if stream.last >= last and not stream.done.done():
            stream.done.set_result(True)
    await asyncio.wait([s.done for s in streams], timeout=deadline)
    cpu = time.process_time() - started
    staleness, unshown = [], 0
    for stream in streams:
        shown = iter(stream.shown)
        current = next(shown, None)
        for number, committed in enumerate(commits):
            while current is not None and current[0] < number:
                current = next(shown, None)
            if current is None:
                unshown += 1
            else:
                staleness.append(current[1] - committed)
    finals = [
        next(t for n, t in s.shown if n >= last) - commits[-1]
        for s in streams
        if s.last >= last
    ]
    print(
        json.dumps(
            {
                "latency": _percentiles([x for s in streams for x in s.latencies]),
                "staleness": _percentiles(staleness),
                "fragments": sum(len(s.latencies) for s in streams),
                "unshown": unshown,
                "final": len(finals),
                "all_final_after": max(finals) if finals else None,
                "cpu": cpu,
            }
        ),
        flush=True,
    )


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    values.sort()

    def at(share: float) -> float:
        return values[min(len(values) - 1, int(len(values) * share))] * 1000

    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": values[-1] * 1000}


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if os.environ.get("BENCH_LOOP") == "asyncio":
        asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    else:
        uvloop.run(main(sys.argv[1], int(sys.argv[2])))
