"""Chaos soak: Redis and three daphne processes under load while things break.

Run with ``make soak`` (ten minutes) or ``python bench/soak.py --minutes M``; the
suite runs one short cycle (tests/test_soak.py). Tabs (SSE readers that keep the
blocks of their page, as reactive.js does) watch four documents as alice, bob,
carol and anonymous visitors, reconnecting to another process when theirs goes.
Changes come from web requests, from ``manage.py shell``, from a worker process
(tracked saves and raw ``emit_sync``), and a guarded document is locked to alice
and opened again. Meanwhile some clients never read, streams open and close all
the time, and in every cycle:

1. one daphne process is killed with SIGKILL (a new one takes its place);
2. Redis restarts, without persistence;
3. one tab stops reading for a while.

After each fault the load stops, and every tab must come to show exactly what a
fresh render of its page shows for its user; bob must never have been sent a title
of the document while it was locked to alice; no process may log an error; and
from one cycle to the next no process's memory may keep growing. It prints the
changes, fragments, resyncs, the worst staleness and each process's RSS curve.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.cluster_nodes import SETTINGS, Cluster, Node  # noqa: E402
from tests.live_server import ROOT as PROJECT  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402
from tests.sse_client import SSEStream  # noqa: E402

BLOCKS = ("title", "viewers", "notice", "greeting")
PUBLIC = (1, 2, 3)  # documents anyone may watch
GUARDED = 4  # locked to alice now and then
USERS = ("alice", "bob", "carol", None)  # None: an anonymous visitor
SWAP = re.compile(r'sse-swap="(\w+)">(.*?)</(?:h1|p)>', re.DOTALL)


@dataclass
class Knobs:
    """How hard the soak pushes, and for how long."""

    cycles: int = 1
    minutes: float = 0.0  # more cycles until this much time has passed
    tabs: int = 12
    deaf: int = 3  # clients that never read
    churn_per_minute: int = 500
    pause_seconds: float = 30.0  # one tab stops reading this long
    save_rate: float = 5.0  # web saves per second
    worker_rate: float = 4.0  # the worker's saves (and raw emits) per second
    load_seconds: float = 5.0  # load before each fault
    settle_limit: float = 30.0  # how long a page may take to converge


SHORT = Knobs(
    cycles=1, tabs=9, deaf=2, churn_per_minute=240, pause_seconds=3.0,
    load_seconds=2.0,
)  # fmt: skip


@dataclass
class Tab:
    """One browser tab: its page's blocks as the stream left them."""

    user: str | None
    cookie: str | None
    pk: int
    blocks: dict[str, str] = field(default_factory=dict)
    path: str = ""  # its stream's path and query
    last_id: str | None = None
    reading: asyncio.Event = field(default_factory=asyncio.Event)
    denied: bool = False  # told to close (access taken away)
    paused: bool = False  # stopped reading in this fault: its staleness is ours
    titles: list[str] = field(default_factory=list)  # every title it was sent
    fragments: int = 0
    task: asyncio.Task[None] | None = None

    def load(self, node: Node) -> None:
        url, _, html = node.page(self.pk, self.cookie)
        self.path, self.last_id, self.denied = url[len(node.url) :], None, False
        self.blocks = blocks_of(html)


@dataclass
class Report:
    changes: int = 0
    fragments: int = 0
    resyncs: float = 0.0
    staleness: list[float] = field(default_factory=list)
    settled: list[tuple[str, float]] = field(default_factory=list)  # fault, seconds
    rss: dict[str, list[float]] = field(default_factory=dict)  # node, MiB per check
    leaks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unsettled: list[str] = field(default_factory=list)


def blocks_of(html: str) -> dict[str, str]:
    return dict(SWAP.findall(html))


class Soak:
    def __init__(self, directory: Path, knobs: Knobs) -> None:
        self.directory = directory
        self.knobs = knobs
        self.redis = RedisServer(directory / "redis")
        self.cluster: Cluster | None = None
        self.nodes: list[Node] = []
        self.logs: dict[Node, Path] = {}
        self.names: dict[Node, str] = {}
        self.tabs: list[Tab] = []
        self.report = Report()
        self.loading = asyncio.Event()  # set: emitters and churn run
        self.saved_at: dict[str, float] = {}  # title -> when its save began
        self.counter = itertools.count(1)
        self.cookies: dict[str, str] = {}
        self.stopping = False
        self.worker: subprocess.Popen[bytes] | None = None
        self.random = random.Random(20)

    # Processes ----------------------------------------------------------------

    def start(self) -> None:
        self.redis.start()
        self.cluster = Cluster(self.directory, self.redis)
        self.cluster.setup()
        self.cluster.shell(
            "for pk in (2, 3, 4): Document.objects.create(pk=pk, title=f'Doc {pk}')"
        )
        for _ in range(3):
            self.add_node()
        for user in USERS[:3]:
            self.cookies[user] = self.nodes[0].login(user)[0]

    def add_node(self) -> Node:
        assert self.cluster is not None
        name = f"daphne-{len(self.logs) + 1}"
        log = self.directory / f"{name}.log"
        node = self.cluster.node(log_path=log)
        self.nodes.append(node)
        self.logs[node], self.names[node] = log, name
        return node

    def start_worker(self) -> None:
        """A worker process: tracked saves, and raw emit_sync, until told to stop."""
        assert self.cluster is not None
        stop = self.directory / "worker.stop"
        code = f"""
import os, time
from reactive_blocks import ChangeEvent, get_bus
from tests.models import Document
n = 0
while not os.path.exists({str(stop)!r}):
    n += 1
    pk = 1 + n % 3
    if n % 2:
        doc = Document.objects.get(pk=pk)
        doc.title = f"worker-{{n}}"
        doc.save()
    else:
        get_bus().emit_sync(ChangeEvent(f"doc-{{pk}}", {{"doc.title"}}))
    time.sleep({1 / self.knobs.worker_rate})
print(n)
"""
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "django", "shell", "-c", code],
            cwd=PROJECT,
            env={**self.cluster_env(), "DJANGO_SETTINGS_MODULE": SETTINGS},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def cluster_env(self) -> dict[str, str]:
        assert self.cluster is not None
        return {**os.environ, **self.cluster.env, "PYTHONPATH": str(PROJECT)}

    def stop_worker(self) -> None:
        if self.worker is None:
            return
        (self.directory / "worker.stop").touch()
        out, err = self.worker.communicate(timeout=60)
        if self.worker.returncode != 0:
            self.report.errors.append(f"worker: {err.decode()[-2000:]}")
        else:
            self.report.changes += int(out.decode().split()[-1])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop_worker()
        if self.cluster is not None:
            self.cluster.close()
        self.redis.stop()

    # Tabs ---------------------------------------------------------------------

    def alive(self) -> list[Node]:
        return [node for node in self.nodes if node.process.poll() is None]

    async def open_tabs(self) -> None:
        users = itertools.cycle(USERS)
        for number in range(self.knobs.tabs):
            user = next(users)
            tab = Tab(user, self.cookies.get(user or ""), PUBLIC[number % 3])
            self.tabs.append(tab)
        # Alice and bob watch the guarded document too.
        for user in ("alice", "bob"):
            self.tabs.append(Tab(user, self.cookies[user], GUARDED))
        for tab in self.tabs:
            await asyncio.to_thread(tab.load, self.random.choice(self.alive()))
            tab.reading.set()
            tab.task = asyncio.create_task(self.read(tab))

    async def read(self, tab: Tab) -> None:
        """Follow the stream as reactive.js does: reconnect to any process when it
        ends or breaks, from the last event id."""
        while not self.stopping:
            if tab.denied:
                await asyncio.sleep(0.1)  # waiting to be reloaded
                continue
            node = self.random.choice(self.alive())
            headers = {"Cookie": tab.cookie} if tab.cookie else {}
            if tab.last_id:
                headers["Last-Event-ID"] = tab.last_id
            try:
                stream = await SSEStream.open(node.url + tab.path, headers)
            except (TimeoutError, OSError, asyncio.IncompleteReadError):
                await asyncio.sleep(0.2 + self.random.random() * 0.3)
                continue
            try:
                if stream.status != 200:
                    if stream.status == 403:
                        tab.denied = True
                    continue
                await self.follow(tab, stream)
            except (OSError, EOFError, asyncio.IncompleteReadError, ValueError):
                pass
            finally:
                await stream.close()
            await asyncio.sleep(0.05 + self.random.random() * 0.2)

    async def follow(self, tab: Tab, stream: SSEStream) -> None:
        while not self.stopping:
            await tab.reading.wait()
            try:
                event = await stream.next_event(timeout=5.0)
            except TimeoutError:
                continue  # pings are every 0.4 s: a stalled process, try again
            if event.id:
                tab.last_id = event.id
            if event.event == "reactive-close":
                tab.denied = True
                return
            if event.event == "reactive-reconnect":
                return
            if event.event in BLOCKS:
                tab.blocks[event.event] = event.data
                tab.fragments += 1
                if event.event == "title":
                    tab.titles.append(event.data)
                    started = self.saved_at.get(event.data)
                    if started is not None and not tab.paused:
                        self.report.staleness.append(time.monotonic() - started)

    # Load ---------------------------------------------------------------------

    async def web_saves(self) -> None:
        while not self.stopping:
            await self.loading.wait()
            title = f"web-{next(self.counter)}"
            node = self.random.choice(self.alive())
            self.saved_at[title] = time.monotonic()
            with contextlib.suppress(OSError, AssertionError):
                await asyncio.to_thread(node.save, title, self.random.choice(PUBLIC))
                self.report.changes += 1
            await asyncio.sleep(1 / self.knobs.save_rate)

    async def churn(self, paths: list[str]) -> None:
        """Streams opened and closed all the time (anonymous, on public docs)."""
        interval = 60 / self.knobs.churn_per_minute
        held: list[SSEStream] = []
        try:
            while not self.stopping:
                await self.loading.wait()
                node = self.random.choice(self.alive())
                with contextlib.suppress(OSError, TimeoutError, ValueError):
                    held.append(
                        await SSEStream.open(node.url + self.random.choice(paths), {})
                    )
                while len(held) > 5:
                    await held.pop(0).close()
                await asyncio.sleep(interval)
        finally:
            for stream in held:
                stream.writer.close()

    async def deaf(self, paths: list[str]) -> list[asyncio.StreamWriter]:
        """Clients that ask for a stream and never read a byte of it."""
        writers = []
        for number in range(self.knobs.deaf):
            node = self.alive()[number % len(self.alive())]
            host, port = node.url.removeprefix("http://").split(":")
            _, writer = await asyncio.open_connection(host, int(port))
            writer.write(
                f"GET {paths[number % len(paths)]} HTTP/1.0\r\n"
                f"Host: {host}\r\n\r\n".encode()
            )
            writers.append(writer)
        return writers

    async def command_save(self) -> None:
        assert self.cluster is not None
        title = f"command-{next(self.counter)}"
        self.saved_at[title] = time.monotonic()
        await asyncio.to_thread(
            self.cluster.shell,
            f"d = Document.objects.get(pk=2); d.title = {title!r}; d.save()",
        )
        self.report.changes += 1

    async def lock_and_open_again(self) -> None:
        """The guarded document is locked to alice, then opened again; bob's tab
        is closed while it is locked, and reloaded after."""
        node = self.random.choice(self.alive())
        number = next(self.counter)
        await asyncio.to_thread(node.lock, f"secret-{number}", "alice", GUARDED)
        self.report.changes += 1
        await asyncio.sleep(0.5)
        await asyncio.to_thread(node.lock, f"open-{number}", "", GUARDED)
        self.report.changes += 1

    # Faults -------------------------------------------------------------------

    async def kill_one(self) -> None:
        victim = self.random.choice(self.alive())
        victim.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(victim.process.wait, 10)
        await asyncio.to_thread(self.add_node)

    async def restart_redis(self) -> None:
        await asyncio.to_thread(self.redis.stop)
        await asyncio.sleep(1.0)  # changes committed meanwhile wait in outboxes
        await asyncio.to_thread(self.redis.start)

    async def pause_a_reader(self) -> None:
        tab = self.random.choice([t for t in self.tabs if t.pk in PUBLIC])
        tab.paused = True
        tab.reading.clear()
        await asyncio.sleep(self.knobs.pause_seconds)
        tab.reading.set()

    # Checks -------------------------------------------------------------------

    async def settle(self, fault: str) -> None:
        """Stop the load, then wait until every tab shows a fresh render."""
        self.loading.clear()
        started = time.monotonic()
        for tab in self.tabs:
            tab.paused = False
        for tab in self.tabs:
            if tab.denied and tab.pk == GUARDED:
                # Reloaded, as a person would once the document opens again.
                await asyncio.to_thread(tab.load, self.random.choice(self.alive()))
        deadline = started + self.knobs.settle_limit
        while True:
            stale = await asyncio.to_thread(self.stale_tabs)
            if not stale:
                break
            if time.monotonic() > deadline:
                self.report.unsettled += [f"after {fault}: {line}" for line in stale]
                break
            await asyncio.sleep(0.25)
        self.report.settled.append((fault, time.monotonic() - started))
        for node in self.alive():
            rss = _rss_mib(node.process.pid)
            self.report.rss.setdefault(self.names[node], []).append(rss)
        self.loading.set()

    def stale_tabs(self) -> list[str]:
        stale = []
        node = self.alive()[0]
        for tab in self.tabs:
            _, _, html = node.page(tab.pk, tab.cookie)
            fresh = blocks_of(html)
            if tab.blocks != fresh:
                wrong = {k: (tab.blocks.get(k), v) for k, v in fresh.items()}
                stale.append(f"{tab.user or 'anonymous'} on doc {tab.pk}: {wrong}")
        return stale

    def check_logs(self) -> None:
        for node, log in self.logs.items():
            text = log.read_text(errors="replace")
            for line in text.splitlines():
                if line.startswith(("ERROR ", "CRITICAL ")) or "Traceback" in line:
                    self.report.errors.append(f"{self.names[node]}: {line}")

    # The run ------------------------------------------------------------------

    async def run(self) -> Report:
        knobs = self.knobs
        self.start()
        self.start_worker()
        await self.open_tabs()
        first = self.alive()[0]
        paths = [
            (await asyncio.to_thread(first.page, pk))[0][len(first.url) :]
            for pk in PUBLIC
        ]
        self.loading.set()
        background = [
            asyncio.create_task(self.web_saves()),
            asyncio.create_task(self.churn(paths)),
        ]
        deaf = await self.deaf(paths)
        began = time.monotonic()
        try:
            for cycle in itertools.count(1):
                for fault, act in (
                    ("kill -9", self.kill_one),
                    ("Redis restart", self.restart_redis),
                    ("a paused reader", self.pause_a_reader),
                ):
                    await asyncio.sleep(knobs.load_seconds)
                    await self.command_save()
                    await self.lock_and_open_again()
                    await act()
                    await asyncio.sleep(knobs.load_seconds)
                    await self.settle(f"cycle {cycle}: {fault}")
                elapsed_minutes = (time.monotonic() - began) / 60
                if cycle >= knobs.cycles and elapsed_minutes >= knobs.minutes:
                    break
            # At the end, once everything went quiet.
            self.stop_worker()
            self.worker = None
            await self.settle("the end")
        finally:
            self.stopping = True
            self.loading.set()
            for writer in deaf:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            for task in [*background, *(t.task for t in self.tabs if t.task)]:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await asyncio.gather(
                *(t.task for t in self.tabs if t.task), return_exceptions=True
            )
        self.report.fragments = sum(tab.fragments for tab in self.tabs)
        with contextlib.suppress(Exception):
            figures = self.alive()[0].metrics()
            self.report.resyncs = figures.get(("reactive_blocks_resyncs_total", ()), 0)
        for tab in self.tabs:
            if tab.user != "alice" and tab.pk == GUARDED:
                self.report.leaks += [t for t in tab.titles if t.startswith("secret-")]
        self.check_logs()
        return self.report


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def growing(rss: dict[str, list[float]]) -> list[str]:
    """Processes whose RSS kept growing: over the later half of their checks,
    more than 10 % and 10 MiB above the earlier half's peak."""
    found = []
    for name, curve in rss.items():
        if len(curve) < 6:
            continue  # too short a life to say
        half = len(curve) // 2
        before, after = max(curve[:half]), max(curve[half:])
        if after > before * 1.1 and after - before > 10:
            found.append(f"{name}: {before:.0f} -> {after:.0f} MiB")
    return found


def print_report(report: Report, seconds: float) -> None:
    staleness = sorted(report.staleness) or [0.0]
    p99 = staleness[max(0, int(len(staleness) * 0.99) - 1)]
    print(f"Chaos soak, {seconds / 60:.1f} minutes:")
    print(f"  changes: {report.changes}, fragments to tabs: {report.fragments}")
    print(f"  resyncs (every process): {report.resyncs:.0f}")
    print(
        f"  staleness of saved titles: median {statistics.median(staleness) * 1000:.0f}"
        f" ms, p99 {p99 * 1000:.0f} ms, worst {staleness[-1] * 1000:.0f} ms"
    )
    worst = max((s for _, s in report.settled), default=0.0)
    print(f"  convergence after a fault: worst {worst:.2f} s")
    for fault, spent in report.settled:
        print(f"    {fault}: {spent:.2f} s")
    print("  RSS (MiB) of each process at each check:")
    for name, curve in report.rss.items():
        print(f"    {name}: " + " ".join(f"{value:.0f}" for value in curve))
    print(f"  pages that did not converge: {len(report.unsettled)}")
    print(f"  titles sent to bob while locked to alice: {len(report.leaks)}")
    print(f"  errors logged: {len(report.errors)}")
    for line in [*report.unsettled, *report.leaks, *report.errors][:20]:
        print(f"    {line}")
    print(f"  processes whose memory kept growing: {growing(report.rss) or 'none'}")


def soak(knobs: Knobs, directory: Path | None = None) -> Report:
    with contextlib.ExitStack() as stack:
        if directory is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        runner = Soak(directory, knobs)
        stack.callback(runner.close)
        return asyncio.run(runner.run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--tabs", type=int, default=24)
    args = parser.parse_args()
    knobs = Knobs(cycles=1, minutes=args.minutes, tabs=args.tabs)
    began = time.monotonic()
    report = soak(knobs)
    print_report(report, time.monotonic() - began)
    failed = report.unsettled or report.leaks or report.errors or growing(report.rss)
    print(json.dumps({"failed": bool(failed)}))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
