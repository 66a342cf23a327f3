"""Redis bus benchmark: a change committed in one process, read from another's stream.

Run with ``make bench-redis`` or ``python bench/redis.py``. It starts a
redis-server and two daphne processes serving the benchmark site (bench/site) with
``RedisBus``: process A saves a tracked item at a steady rate, process B serves
the streams of N pages, and this process reads those streams. Each title carries
the monotonic time of its commit, so every fragment read gives one
commit-to-fragment latency across processes.

It prints, as medians of ``--runs`` runs:

* latency p50/p99 at 100 connections and 50 changes/s (targets: p50 < 5 ms,
  p99 < 25 ms), with the fragments lost;
* the highest rate of changes that keeps p99 under 100 ms (ramping up);
* Redis commands and PUBLISH per change (target: one PUBLISH, whatever N);
* 1,000 pages on one process against 1,000 on each of two, 20 changes/s: their
  staleness, the serving process's CPU per fragment and the cores in use; then the
  same with each server and its load generator held on a core of its own, as on a
  machine with a core per process;
* the same transport built on channels-redis's pub/sub layer, for comparison:
  revisions need an INCR beside its PUBLISH, and two emitting processes then
  deliver revisions out of order.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import itertools
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this file's folder comes first on the path, and this file would
# shadow the redis package: the repository's root takes its place.
sys.path[0] = str(ROOT)

from bench.drive import Server, cpu_seconds, get, save_all  # noqa: E402
from bench.e2e import LoadGenerator, wait_for  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402
from tests.sse_client import SSEStream  # noqa: E402

SETTINGS = "bench.site.settings"
APPLICATION = "bench.site.asgi:application"


class Site:
    """Redis, and two daphne processes of the benchmark site on RedisBus."""

    def __init__(self, directory: Path) -> None:
        self.redis = RedisServer(directory / "redis").start()
        self.server = Server(
            SETTINGS,
            APPLICATION,
            {
                "BENCH_BUS": "redis",
                "BENCH_REDIS_URL": self.redis.url,
                "BENCH_DATABASE": str(directory / "bench.sqlite3"),
            },
        )
        self.writer, self.writer_pid = self.server.start()
        self.reader, self.reader_pid = self.server.start()

    def stream_path(self) -> str:
        page = get(self.writer + "/items/1/")
        start = page.index('data-reactive-stream="') + len('data-reactive-stream="')
        return page[start : page.index('"', start)].replace("&amp;", "&")

    def redis_counts(self) -> tuple[int, int, int]:
        """(commands processed, PUBLISH calls, EVALSHA calls) so far, from INFO.

        Commands run inside a script count too; the round trips the bus makes are
        its EVALSHA calls (one per change).
        """
        import redis

        client = redis.Redis.from_url(self.redis.url)
        try:
            stats = client.info("all")
            publish = stats.get("cmdstat_publish", {}).get("calls", 0)
            evalsha = stats.get("cmdstat_evalsha", {}).get("calls", 0)
            return int(stats["total_commands_processed"]), int(publish), int(evalsha)
        finally:
            client.close()

    def close(self) -> None:
        self.server.close()
        self.redis.stop()


async def read_titles(stream: SSEStream, last: int, latencies: list[float]) -> bool:
    """Read title fragments until change ``last``; False if the stream ended first.
    A busy stream merges changes, so it may skip some: that is no loss."""
    event = ""
    while True:
        line = await stream.reader.readline()
        if not line:
            return False
        if line.startswith(b"event: "):
            event = line[7:].strip().decode()
        elif line.startswith(b"data: ") and event == "item" and b"item-title" in line:
            text = line.split(b'class="item-title">', 1)[1].split(b"<", 1)[0]
            number, stamp = text.decode().split()
            latencies.append(time.monotonic() - float(stamp))
            if int(number) == last:
                return True


async def measure(site: Site, connections: int, rate: float, seconds: float) -> dict:
    path = site.stream_path()
    streams = [await SSEStream.open(site.reader + path) for _ in range(connections)]
    deadline = time.monotonic() + 30
    while json.loads(get(site.reader + "/stats/"))["subscribers"] < connections:
        assert time.monotonic() < deadline, "the streams did not all subscribe"
        await asyncio.sleep(0.05)  # polling a condition with a deadline
    count = max(1, int(rate * seconds))
    latencies: list[float] = []
    commands, publishes, scripts = site.redis_counts()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    saving = asyncio.ensure_future(
        asyncio.to_thread(save_all, site.writer, rate, count)
    )
    readers = [read_titles(s, count, latencies) for s in streams]
    try:
        received = await asyncio.wait_for(asyncio.gather(*readers), seconds + 30)
        saved_in, _ = await saving
    finally:
        for stream in streams:
            await stream.close()
    elapsed = time.monotonic() - started
    used = resource.getrusage(resource.RUSAGE_SELF)
    after_commands, after_publishes, after_scripts = site.redis_counts()
    return {
        **percentiles(latencies),
        "rate": count / saved_in,
        "lost": received.count(False),  # pages that never showed the last change
        "merged": 1 - len(latencies) / (connections * (count + 1)),
        "commands": (after_commands - commands) / count,
        "publishes": (after_publishes - publishes) / count,
        "round_trips": (after_scripts - scripts) / count,
        "driver_cpu": (used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime)
        / elapsed,
    }


def spread(
    site: Site, pages: int, rate: float, seconds: float, pinned: bool = False
) -> dict[str, dict]:
    """``pages`` pages on one process (the other saves), then ``pages`` on each of
    the two: their staleness, and what each change cost Redis. ``pinned``: each
    server and its load generator on a core of their own, as on a machine with a
    core per process."""
    path = site.stream_path()
    count = max(1, int(rate * seconds))
    found = {}
    for label, urls in (("one", [site.reader]), ("two", [site.reader, site.writer])):
        _unnumbered(site.writer)  # pages of an earlier measurement show no change
        loads = [LoadGenerator(url + path, pages) for url in urls]
        try:
            if pinned:
                pin(site.reader_pid, loads[0].process.pid, core=0)
                pin(site.writer_pid, *(load.process.pid for load in loads[1:]), core=1)
            for url in urls:
                wait_for(
                    lambda url=url: (
                        json.loads(get(url + "/stats/"))["subscribers"] >= pages
                    ),
                    60,
                    "subscribing",
                )
            commands, publishes, _ = site.redis_counts()
            pids = (site.reader_pid, site.writer_pid)
            cpu = [cpu_seconds(pid) for pid in pids]
            started = time.monotonic()
            _, commits = save_all(site.writer, rate, count)
            results = [load.result(commits, deadline=60) for load in loads]
            elapsed = time.monotonic() - started
            cpu = [
                cpu_seconds(pid) - before for pid, before in zip(pids, cpu, strict=True)
            ]
            after_commands, after_publishes, _ = site.redis_counts()
        finally:
            for load in loads:
                load.close()
            if pinned:
                pin(site.reader_pid, site.writer_pid, core=None)
        found[label] = {
            "pages": pages * len(urls),
            "p99": max(r["staleness"]["p99"] for r in results),
            "p50": statistics.median(r["staleness"]["p50"] for r in results),
            "not_final": sum(pages - r["final"] for r in results),
            "commands": (after_commands - commands) / (count + 1),
            "publishes": (after_publishes - publishes) / (count + 1),
            # The process that only serves pages in both measurements.
            "reader_us": cpu[0] / max(1, results[0]["fragments"]) * 1e6,
            # Cores the servers and load generators kept busy in all.
            "cores": (sum(cpu) + sum(r["cpu"] for r in results)) / elapsed,
        }
    return found


def print_spread(label: str, case: str, rows: list[dict]) -> None:
    def median(key: str) -> float:
        return statistics.median(row[key] for row in rows)

    print(
        f"  {case}{label} process(es), {rows[0]['pages']:,} pages: staleness p50 "
        f"{median('p50'):.0f} ms, p99 {median('p99'):.0f} ms, not final "
        f"{median('not_final'):.0f}; Redis commands per change "
        f"{median('commands'):.1f}, PUBLISH {median('publishes'):.1f}; the serving "
        f"process {median('reader_us'):.1f} µs of CPU per fragment; servers and "
        f"load generators busy {median('cores'):.2f} of {os.cpu_count()} cores"
    )


def pin(*pids: int, core: int | None) -> None:
    """Keep every thread of ``pids`` on ``core`` (None: on any), and the threads
    they start after."""
    cores = set(range(os.cpu_count() or 1)) if core is None else {core}
    for pid in pids:
        for thread in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(ProcessLookupError):  # a thread that ended
                os.sched_setaffinity(int(thread), cores)


def _unnumbered(url: str) -> None:
    """Save a title no reader takes for a numbered change."""
    connection = http.client.HTTPConnection(urlsplit(url).netloc, timeout=30)
    try:
        connection.request("POST", "/save/1/", body=json.dumps({"n": -1}).encode())
        connection.getresponse().read()
    finally:
        connection.close()


async def ramp(site: Site, connections: int, seconds: float, limit_ms: float) -> float:
    """The highest rate (changes/s) whose p99 stays under ``limit_ms``."""
    best = 0.0
    for rate in (50, 100, 200, 400, 800, 1600):
        try:
            result = await measure(site, connections, rate, seconds)
        except TimeoutError:
            break  # the pages fell behind for good
        print(
            f"    asked {rate:5} changes/s, made {result['rate']:6.0f}: p50 "
            f"{result['p50']:.1f} ms, p99 {result['p99']:.1f} ms, merged "
            f"{result['merged']:.0%}",
            flush=True,
        )
        if result["p99"] > limit_ms or result["lost"]:
            break
        best = result["rate"]
        if result["rate"] < rate * 0.9:
            break  # one writer saves no faster: the site is not the limit yet
    return best


# channels-redis, for comparison -------------------------------------------------------


async def channels_redis_transport(url: str, changes: int, rate: float) -> dict:
    """Revisions over channels-redis: INCR, then group_send, from two emitters."""
    import redis.asyncio as aioredis
    from channels_redis.pubsub import RedisPubSubChannelLayer

    receiver = RedisPubSubChannelLayer(hosts=[url], prefix="compare")
    channel = await receiver.new_channel()
    await receiver.group_add("scope", channel)
    emitters = [
        RedisPubSubChannelLayer(hosts=[url], prefix="compare") for _ in range(2)
    ]
    counter = aioredis.Redis.from_url(url)
    await counter.delete("compare:rev")

    async def emit(layer: RedisPubSubChannelLayer, share: int) -> None:
        start = time.monotonic()
        for number in range(share):
            delay = start + number / (rate / 2) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the load
            revision = await counter.incr("compare:rev")
            await layer.group_send(
                "scope", {"type": "change", "rev": revision, "t": time.monotonic()}
            )

    latencies, revisions = [], []

    async def receive() -> None:
        while len(revisions) < changes:
            message = await receiver.receive(channel)
            latencies.append(time.monotonic() - message["t"])
            revisions.append(message["rev"])

    await asyncio.wait_for(
        asyncio.gather(receive(), *(emit(e, changes // 2) for e in emitters)), 60
    )
    for layer in (receiver, *emitters):
        await layer.flush()
    await counter.aclose()
    return transport_figures(latencies, revisions, round_trips=2)


async def redis_bus_transport(url: str, changes: int, rate: float) -> dict:
    """The same load through RedisBus: two emitting buses, one receiving."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    import django

    django.setup()
    from reactive_blocks import ChangeEvent, RedisBus

    receiver = RedisBus(url, prefix="compare-bus")
    emitters = [RedisBus(url, prefix="compare-bus") for _ in range(2)]
    sub = receiver.subscribe("scope")
    await sub.ready()
    stamps: dict[str, float] = {}

    async def emit(bus: RedisBus, name: str, share: int) -> None:
        start = time.monotonic()
        for number in range(share):
            delay = start + number / (rate / 2) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the load
            path = f"{name}.n{number}"
            stamps[path] = time.monotonic()
            bus.emit_sync(ChangeEvent("scope", frozenset({path})))

    latencies, revisions = [], []

    async def receive() -> None:
        while len(latencies) < changes:
            async for event in sub:
                (path,) = event.changed_paths
                latencies.append(time.monotonic() - stamps[path])
                revisions.append(sub.revision)
                if len(latencies) == changes:
                    return

    await asyncio.wait_for(
        asyncio.gather(
            receive(), *(emit(b, f"e{i}", changes // 2) for i, b in enumerate(emitters))
        ),
        60,
    )
    for bus in (receiver, *emitters):
        bus.close()
    return transport_figures(latencies, revisions, round_trips=1)


async def redis_bus_ceiling(redis: RedisServer, changes: int) -> dict:
    """Changes/s through one Redis: two buses emit as fast as they can, one
    receives them all. Redis's own CPU share says how far Redis is from its limit
    (the emitting and receiving clients, in this one process, are the bottleneck).
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    import django

    django.setup()
    from reactive_blocks import ChangeEvent, RedisBus

    receiver = RedisBus(redis.url, prefix="ceiling", maxsize=changes)
    emitters = [
        RedisBus(redis.url, prefix="ceiling", outbox_size=changes) for _ in range(2)
    ]
    sub = receiver.subscribe("scope")
    await sub.ready()
    events = [ChangeEvent("scope", frozenset({f"n{n}"})) for n in range(changes)]
    received = 0
    start, redis_cpu = time.monotonic(), _cpu_of(redis.process.pid)
    for number, event in enumerate(events):
        emitters[number % 2].emit_sync(event)
    while received < changes:
        batch = await asyncio.wait_for(sub.next_batch(), 30)
        assert batch is not None, "the subscription ended"
        assert not batch.lagged, "the receiver fell behind"
        received += len(batch.events)
    seconds = time.monotonic() - start
    redis_share = (_cpu_of(redis.process.pid) - redis_cpu) / seconds
    for bus in (receiver, *emitters):
        bus.close()
    return {"per_second": changes / seconds, "redis_cpu": redis_share}


def _cpu_of(pid: int) -> float:
    """CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def transport_figures(
    latencies: list[float], revisions: list[int], round_trips: int
) -> dict:
    return {
        **percentiles(latencies),
        "out_of_order": sum(1 for a, b in itertools.pairwise(revisions) if b < a),
        "round_trips": round_trips,
    }


def percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "p50": statistics.median(ordered) * 1000,
        "p99": ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--ceiling-changes", type=int, default=20_000)
    parser.add_argument("--pages", type=int, default=1000, help="per process")
    args = parser.parse_args()

    results, ceilings, transports = [], [], {"redis-bus": [], "channels-redis": []}
    spreads: list[dict[str, dict]] = []
    pinned: list[dict[str, dict]] = []
    ceilings_redis: list[dict] = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as directory:
            site = Site(Path(directory))
            try:
                results.append(
                    asyncio.run(
                        measure(site, args.connections, args.rate, args.seconds)
                    )
                )
                ceilings.append(asyncio.run(ramp(site, args.connections, 4, 100)))
                spreads.append(spread(site, args.pages, 20, 10))
                if (os.cpu_count() or 1) >= 2:
                    pinned.append(spread(site, args.pages, 20, 10, pinned=True))
                ceilings_redis.append(
                    asyncio.run(redis_bus_ceiling(site.redis, args.ceiling_changes))
                )
                for name, transport in (
                    ("redis-bus", redis_bus_transport),
                    ("channels-redis", channels_redis_transport),
                ):
                    transports[name].append(
                        asyncio.run(transport(site.redis.url, 2000, 400))
                    )
            finally:
                site.close()

    def median(rows: list[dict], key: str) -> float:
        return statistics.median(row[key] for row in rows)

    print(
        f"Cross-process delivery, {args.connections} connections, {args.rate:g} "
        f"changes/s, medians of {args.runs} runs:"
    )
    print(f"  commit -> fragment p50: {median(results, 'p50'):.2f} ms (target < 5)")
    print(f"  commit -> fragment p99: {median(results, 'p99'):.2f} ms (target < 25)")
    print(f"  pages not on the final state: {median(results, 'lost'):.0f}")
    print(f"  changes merged into a later render: {median(results, 'merged'):.1%}")
    print(f"  Redis round trips per change: {median(results, 'round_trips'):.2f}")
    print(f"  Redis commands per change: {median(results, 'commands'):.2f}")
    print(f"  PUBLISH per change: {median(results, 'publishes'):.2f} (target 1)")
    print(
        f"  load generator CPU: {median(results, 'driver_cpu') * 100:.0f} % of a core"
    )
    print(
        f"Highest sustained changes/s with p99 < 100 ms, {args.connections} "
        f"connections: {statistics.median(ceilings):g}"
    )
    per_second = median(ceilings_redis, "per_second")
    redis_cpu = median(ceilings_redis, "redis_cpu")
    print(
        f"Through one Redis, flat out ({args.ceiling_changes:,} changes, 2 emitting "
        f"buses, 1 receiving): {per_second:,.0f} changes/s, Redis at "
        f"{redis_cpu:.0%} of a core (so Redis alone: ~{per_second / redis_cpu:,.0f}/s)"
    )
    print(
        f"{args.pages:,} pages per process, 20 changes/s (saved through the first), "
        f"medians of {args.runs} runs:"
    )
    cases = [("", spreads)]
    if pinned:
        cases.append(("each on a core of its own (with its load generator), ", pinned))
    for case, found in cases:
        for label in ("one", "two"):
            print_spread(label, case, [s[label] for s in found])
    print("Transport alone, 2 emitting processes, 1 receiver, 400 changes/s:")
    for name, rows in transports.items():
        print(
            f"  {name:15} p50 {median(rows, 'p50'):.2f} ms, p99 "
            f"{median(rows, 'p99'):.2f} ms, out of order "
            f"{median(rows, 'out_of_order'):.0f}, round trips per change "
            f"{median(rows, 'round_trips'):.0f}"
        )


if __name__ == "__main__":
    main()
