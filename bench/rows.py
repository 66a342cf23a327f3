"""Keyed rows: what a change to one row of a 1,000-row live list costs.

Run with ``make bench`` or ``python bench/rows.py [--rows 1000] [--tabs 20]
[--changes 20] [--runs 3]``. One daphne process serves bench/site through
``get_asgi_application()`` on the in-process bus; its page ``/page/list/`` is a
live page (``{% reactive_connect %}``, no stream class) listing every item, one
``<li id="item-{{ item.pk }}">`` each; ``/page/list-whole/`` is the same page with
``data-reactive-rows="off"``. ``--tabs`` tabs (held by this process, each the one
connection reactive.js opens) watch it; one change warms up (it is sent whole: the
server learns the rows a page shows from it), then ``--changes`` saves each change
one random row's title, one after the other once every tab has shown the last.
Printed per change, medians of ``--runs`` runs: bytes each tab received, rows and
whole blocks rendered by the server, its view runs and its CPU time (user and
system, from /proc: the tabs run in this process, not the server's).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import random
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

from bench.drive import Server, cpu_seconds  # noqa: E402

SETTINGS = "bench.site.settings"
APPLICATION = "bench.site.pages_asgi:application"
CONNECT = re.compile(r'data-reactive-stream="([^"]+)"')
# A saved item's title: "<change number> <commit time>" (bench/sites.py).
TITLE = re.compile(rb"item-title[^>]*>(\d+) \d+\.\d+<")
TAIL = 200  # bytes kept between chunks: a title split across two is found
DEADLINE = 60.0


class Tab:
    """One tab's connection: the bytes it received, the changes it has shown."""

    def __init__(self, host: str, port: int, url: str) -> None:
        self.host, self.port, self.url = host, port, url
        self.bytes = 0
        self.seen: set[int] = set()
        self.open = asyncio.Event()
        self.changed = asyncio.Event()

    async def run(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        body = json.dumps({"streams": [{"url": self.url, "last": None}]})
        writer.write(
            (
                f"POST /_reactive/streams/ HTTP/1.1\r\nHost: {self.host}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}"
                f"\r\n\r\n{body}"
            ).encode()
        )
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        self.open.set()
        tail = b""
        try:
            while chunk := await reader.read(65536):
                self.bytes += len(chunk)
                text = (tail + chunk).replace(b'\\"', b'"')
                for number in TITLE.findall(text):
                    self.seen.add(int(number))
                tail = text[-TAIL:]
                self.changed.set()
        finally:
            writer.close()


def page_stream(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        page = response.read().decode()
    found = CONNECT.search(page)
    if found is None:
        raise RuntimeError(f"{url} has no {{% reactive_connect %}}")
    return html.unescape(found.group(1))


def stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/stats/", timeout=30) as response:
        counts: dict[str, Any] = json.loads(response.read())["renders"]
        return counts


def save(url: str, pk: int, number: int) -> None:
    request = urllib.request.Request(
        f"{url}/save/{pk}/", data=json.dumps({"n": number}).encode(), method="POST"
    )
    urllib.request.urlopen(request, timeout=30).read()


async def until_shown(tabs: list[Tab], number: int) -> None:
    deadline = time.monotonic() + DEADLINE
    while not all(number in tab.seen for tab in tabs):
        if time.monotonic() > deadline:
            raise RuntimeError(f"change {number} did not reach every tab")
        for tab in tabs:
            tab.changed.clear()
        await asyncio.wait(
            [asyncio.ensure_future(t.changed.wait()) for t in tabs],
            timeout=1,
            return_when=asyncio.FIRST_COMPLETED,
        )


async def measure(
    url: str, pid: int, path: str, rows: int, tabs: int, changes: int, start: int
) -> dict[str, float]:
    """``start``: the first change number, above any an earlier page saved."""
    host, port = "127.0.0.1", int(url.rsplit(":", 1)[1])
    # A page load per tab: each has its own signed stream (one stream per token).
    streams = [await asyncio.to_thread(page_stream, url + path) for _ in range(tabs)]
    watching = [Tab(host, port, stream) for stream in streams]
    tasks = [asyncio.create_task(tab.run()) for tab in watching]
    await asyncio.gather(*(tab.open.wait() for tab in watching))
    rng = random.Random(7)
    await asyncio.to_thread(save, url, rng.randint(1, rows), start)  # warm-up
    await until_shown(watching, start)
    before_bytes = [tab.bytes for tab in watching]
    before = await asyncio.to_thread(stats, url)
    cpu = cpu_seconds(pid)
    for number in range(start + 1, start + changes + 1):
        await asyncio.to_thread(save, url, rng.randint(1, rows), number)
        await until_shown(watching, number)
    cpu = cpu_seconds(pid) - cpu
    after = await asyncio.to_thread(stats, url)
    received = [tab.bytes - b for tab, b in zip(watching, before_bytes, strict=True)]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "bytes": statistics.median(received) / changes,
        "rows": (after["rows"] - before["rows"]) / changes,
        "renders": (after["renders"] - before["renders"]) / changes,
        "runs": (after["contexts"] - before["contexts"]) / changes,
        "cpu_ms": cpu * 1000 / changes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--tabs", type=int, default=20)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    pages = {
        "keyed rows": "/page/list/",
        'data-reactive-rows="off"': "/page/list-whole/",
    }
    results: dict[str, list[dict[str, float]]] = {name: [] for name in pages}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            env = {"BENCH_DATABASE": str(Path(folder) / "bench.sqlite3")}
            server = Server(SETTINGS, APPLICATION, env)
            server.manage(
                "shell",
                "-c",
                "from bench.site.models import Item; Item.objects.bulk_create("
                f"Item(title=f'{{n}} item', body='a row of the list') "
                f"for n in range(2, {args.rows + 1}))",
            )
            try:
                url, pid = server.start()
                for number, (name, path) in enumerate(pages.items()):
                    start = 1 + number * (args.changes + 1)
                    figures = measure(
                        url, pid, path, args.rows, args.tabs, args.changes, start
                    )
                    results[name].append(asyncio.run(figures))
            finally:
                server.close()
    print(
        f"Keyed rows: one row of {args.rows:,} changed, {args.tabs} tabs watching "
        f"(medians of {args.runs} runs, {args.changes} changes each)"
    )
    print(
        f"  {'':26} {'bytes/tab':>10} {'rows':>6} {'whole renders':>14} "
        f"{'view runs':>10} {'server CPU':>11}"
    )
    for name, runs in results.items():
        median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        print(
            f"  {name:26} {median['bytes']:>10,.0f} {median['rows']:>6.1f} "
            f"{median['renders']:>14.1f} {median['runs']:>10.1f} "
            f"{median['cpu_ms']:>8.1f} ms"
        )


if __name__ == "__main__":
    main()
