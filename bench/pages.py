"""Live pages against a stream class: one page watched by 1,000 tabs.

Run with ``make bench`` or ``python bench/pages.py``. One daphne process serves
bench/site through ``get_asgi_application()`` on the in-process bus; a load
generator (bench/loadgen.py) holds the tabs open; the item is saved ``--rate``
times a second for ``--seconds``. Three ways of watching the same page:

* ``stream class``: bench/site's ``ItemStream`` (context built once per change,
  the block rendered once and sent to every tab);
* ``live page, 10 sessions``: ``{% reactive_connect %}`` with no argument, the
  tabs shared by 10 sessions (a view run per session and change);
* ``live page, 1,000 sessions``: every tab its own session.

Printed per change, medians of ``--runs`` runs: view runs (contexts built, for
the stream class), block renders, server CPU, and the staleness p99 (for every tab
and change, how long until the tab showed it or a later one).
"""

from __future__ import annotations

import argparse
import html
import json
import re
import statistics
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

from bench.drive import Server, cpu_seconds, get, save_all  # noqa: E402
from bench.e2e import LoadGenerator, wait_for  # noqa: E402

SETTINGS = "bench.site.settings"
APPLICATION = "bench.site.pages_asgi:application"
CONNECT = re.compile(r'data-reactive-stream="([^"]+)"')


def session(url: str) -> str:
    with urllib.request.urlopen(url + "/session/", timeout=30) as response:
        return next(
            c.split(";", 1)[0]
            for c in response.headers.get_all("Set-Cookie")
            if c.startswith("sessionid=")
        )


def tabs_file(url: str, tabs: int, sessions: int, directory: Path) -> Path:
    """A page load per tab, each tab one of ``sessions``: "URL<tab>Cookie" lines."""
    cookies = [session(url) for _ in range(sessions)]
    lines = []
    for number in range(tabs):
        cookie = cookies[number % sessions]
        request = urllib.request.Request(
            url + "/page/items/1/", headers={"Cookie": cookie}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            page = response.read().decode()
        found = CONNECT.search(page)
        assert found, page
        lines.append(f"{url}{html.unescape(found.group(1))}\t{cookie}")
    target = directory / f"tabs-{sessions}.txt"
    target.write_text("\n".join(lines) + "\n")
    return target


def counts(url: str) -> dict[str, Any]:
    stats: dict[str, Any] = json.loads(get(url + "/stats/"))
    return stats


def measure(
    sessions: int | None, tabs: int, rate: float, seconds: float, directory: Path
) -> dict[str, float]:
    """One run; ``sessions`` None: the stream class."""
    server = Server(
        SETTINGS,
        APPLICATION,
        {"BENCH_DATABASE": str(directory / "pages.sqlite3"), "BENCH_BUS": "memory"},
    )
    try:
        url, pid = server.start()
        if sessions is None:
            load = LoadGenerator(url + "/live/items/1/", tabs)
        else:
            load = LoadGenerator(str(tabs_file(url, tabs, sessions, directory)), tabs)
        try:
            wait_for(lambda: counts(url)["streams"] >= tabs, 120, "opening the tabs")
            before, cpu = counts(url)["renders"], cpu_seconds(pid)
            changes = max(1, int(rate * seconds))
            _, commits = save_all(url, rate, changes)
            outcome = load.result(commits, deadline=120)
            cpu = cpu_seconds(pid) - cpu
            after = counts(url)["renders"]
        finally:
            load.close()
    finally:
        server.close()
    made = changes + 1  # save_all saves a final change last
    return {
        "view_runs": (after["contexts"] - before["contexts"]) / made,
        "renders": (after["renders"] - before["renders"]) / made,
        "cpu_ms": cpu / made * 1000,
        "stale_p99": outcome["staleness"]["p99"],
        "not_final": tabs - outcome["final"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tabs", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(
        f"{args.tabs} tabs of one page, {args.rate:g} changes/s for "
        f"{args.seconds:g} s, medians of {args.runs} runs, per change:"
    )
    print(
        f"{'':28} {'view runs':>9} {'renders':>8} {'CPU ms':>8} "
        f"{'stale p99 ms':>12} {'not final':>9}"
    )
    for label, sessions in (
        ("stream class", None),
        ("live page, 10 sessions", 10),
        (f"live page, {args.tabs:,} sessions", args.tabs),
    ):
        rows = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as directory:
                rows.append(
                    measure(
                        sessions, args.tabs, args.rate, args.seconds, Path(directory)
                    )
                )
        median = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        print(
            f"{label:28} {median['view_runs']:9.1f} {median['renders']:8.1f} "
            f"{median['cpu_ms']:8.1f} {median['stale_p99']:12.1f} "
            f"{median['not_final']:9.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
