"""End-to-end fan-out benchmark: reactive_blocks against django-eventstream.

Run with ``make bench`` or ``python bench/e2e.py``. For each site it starts one
daphne process (bench/site on the in-process bus; bench/eventstream_site with
django-eventstream 5.3.4), opens N streams of one item's page from a separate
load-generator process (bench/loadgen.py), saves the item at R changes per second
through the server, and prints medians of ``--runs`` runs of:

* change -> fragment latency p50/p90/p99/max, and the staleness p99 (for every page
  and change, how long until the page showed it or a later one);
* how long until every page showed the final change, and how many never did;
* fragments delivered per second, renders per change, server CPU per fragment;
* server RSS idle, with N streams open, and after they closed; its threads.

Matrix: N in 1, 100, 1,000, 5,000 at R = 20/s; N = 1,000 at the highest R whose
staleness p99 stays under 100 ms; N = 100 on a page of five blocks, two of them
personal. Then 5,000 idle streams, opened and closed three times, for memory.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

from bench.drive import (  # noqa: E402
    Server,
    cpu_seconds,
    get,
    rss_kib,
    save_all,
    threads,
)

SITES: dict[str, tuple[str | None, str]] = {
    "reactive_blocks": ("bench.site.settings", "bench.site.asgi:application"),
    # The same, with every fragment sent through daphne (DIRECT_WRITES off).
    "rb through daphne": ("bench.site.settings", "bench.site.asgi:application"),
    "django-eventstream": (
        "bench.eventstream_site.settings",
        "bench.eventstream_site.asgi:application",
    ),
    "daphne floor": (None, "bench.floor:application"),
}
PATHS = {
    ("reactive_blocks", 1): "/live/items/1/",
    ("reactive_blocks", 5): "/live/items5/1/",
    ("rb through daphne", 1): "/live/items/1/",
    ("django-eventstream", 1): "/events/item-1/",
    ("daphne floor", 1): "/events/item-1/",
}


def connected(site: str, url: str) -> int:
    stats = json.loads(get(url + "/stats/"))
    return int(stats["subscribers" if ours(site) else "listeners"])


THROUGH = "rb through daphne"  # at N = 1,000 only, beside reactive_blocks


def ours(site: str) -> bool:
    return site in ("reactive_blocks", THROUGH)


def wait_for(condition: Any, limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {limit:.0f}s")
        time.sleep(0.05)  # polling a condition with a deadline


class LoadGenerator:
    """bench/loadgen.py, holding ``count`` streams of ``url`` open."""

    def __init__(self, url: str, count: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "loadgen.py"), url, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != "READY":
            self.close()
            raise RuntimeError(f"the load generator failed to connect: {line!r}")

    def result(self, commits: list[float], deadline: float) -> dict[str, Any]:
        return self._ask({"commits": commits, "deadline": deadline})

    def hold(self, seconds: float) -> dict[str, Any]:
        """Keep the streams idle for ``seconds``: how many stayed open, pings seen."""
        return self._ask({"hold": seconds})

    def _ask(self, order: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(order) + "\n")
        self.process.stdin.flush()
        reply: dict[str, Any] = json.loads(self.process.stdout.readline())
        return reply

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(60)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


PROFILE: list[str] = []  # set by --profile: py-spy records the server as it works


def measure(
    site: str,
    directory: Path,
    connections: int,
    rate: float,
    seconds: float,
    blocks: int,
) -> dict[str, Any]:
    settings, application = SITES[site]
    server = Server(
        settings,
        application,
        {
            "BENCH_DATABASE": str(directory / f"{site}.sqlite3"),
            "BENCH_BUS": "memory",
            "BENCH_DIRECT": "0" if site == "rb through daphne" else "1",
        },
    )
    try:
        url, pid = server.start()
        idle = rss_kib(pid)
        load = LoadGenerator(url + PATHS[(site, blocks)], connections)
        try:
            wait_for(lambda: connected(site, url) >= connections, 60, "subscribing")
            with_streams, thread_count = rss_kib(pid), threads(pid)
            renders = _renders(site, url)
            cpu = cpu_seconds(pid)
            count = max(1, int(rate * seconds))
            spy = _profile(pid, site, connections, seconds)
            saved_in, commits = save_all(url, rate, count)
            outcome = load.result(commits, deadline=60)
            cpu = cpu_seconds(pid) - cpu
            if spy is not None:
                spy.wait(60)
            renders = _renders(site, url) - renders
        finally:
            load.close()
        wait_for(lambda: connected(site, url) == 0, 60, "closing")
        after = rss_kib(pid)
    finally:
        server.close()
    fragments = outcome["fragments"]
    window = saved_in + (outcome["all_final_after"] or 0)
    return {
        "latency": outcome["latency"],
        "staleness": outcome["staleness"],
        "rate": count / saved_in,
        "all_final_after": (outcome["all_final_after"] or float("nan")) * 1000,
        "unshown": outcome["unshown"],
        "not_final": connections - outcome["final"],
        "fragments_per_s": fragments / window,
        "renders_per_change": renders / (count + 1),
        "cpu": cpu,
        "ms_per_change": cpu / (count + 1) * 1000,
        "us_per_fragment": cpu / max(1, fragments) * 1e6,
        "rss_idle": idle / 1024,
        "rss_with": with_streams / 1024,
        "rss_after": after / 1024,
        "kib_per_stream": (with_streams - idle) / connections,
        "threads": thread_count,
        "loadgen_cpu": outcome["cpu"] / window,
    }


IDLE_HEARTBEAT = 1.0  # seconds: heartbeats run all the time the streams are held


def idle(connections: int, cycles: int, hold: float) -> list[dict[str, float]]:
    """Open ``connections`` idle streams, hold them while heartbeats run, close
    them; ``cycles`` times on one server. One row per cycle."""
    settings, application = SITES["reactive_blocks"]
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        server = Server(
            settings,
            application,
            {
                "BENCH_DATABASE": str(Path(directory) / "idle.sqlite3"),
                "BENCH_BUS": "memory",
                "BENCH_HEARTBEAT": str(IDLE_HEARTBEAT),
            },
        )
        try:
            url, pid = server.start()
            get(url + "/stats/")
            before = rss_kib(pid)
            for _ in range(cycles):
                load = LoadGenerator(url + PATHS[("reactive_blocks", 1)], connections)
                try:
                    wait_for(
                        lambda: connected("reactive_blocks", url) >= connections,
                        60,
                        "subscribing",
                    )
                    with_streams, thread_count = rss_kib(pid), threads(pid)
                    held = load.hold(hold)
                finally:
                    load.close()
                wait_for(lambda: connected("reactive_blocks", url) == 0, 60, "closing")
                rows.append(
                    {
                        "before": before / 1024,
                        "with": with_streams / 1024,
                        "after": rss_kib(pid) / 1024,
                        "kib_per_stream": (with_streams - before) / connections,
                        "threads": thread_count,
                        "open": held["open"],
                        "pings_per_stream": held["pings"] / connections,
                    }
                )
        finally:
            server.close()
    return rows


def _profile(pid: int, site: str, connections: int, seconds: float) -> Spies | None:
    """py-spy on the server while it works: raw stacks (for bench/profile.py's
    table) and a flame graph (SVG), one sampler each."""
    if not PROFILE:
        return None
    stem = Path(PROFILE[0]) / f"{site.replace(' ', '-')}-{connections}"
    spy = str(Path(sys.executable).parent / "py-spy")
    processes = []
    for kind, suffix in (("raw", ".txt"), ("flamegraph", ".svg")):
        command = [spy, "record", "--pid", str(pid), "--format", kind]
        command += ["--output", f"{stem}{suffix}", "--duration", str(int(seconds))]
        command += ["--rate", "250", "--nonblocking"]
        processes.append(
            subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
    return Spies(processes)


class Spies:
    """The py-spy processes recording one server."""

    def __init__(self, processes: list[subprocess.Popen[bytes]]) -> None:
        self.processes = processes

    def wait(self, timeout: float) -> None:
        for process in self.processes:
            process.wait(timeout)


def _renders(site: str, url: str) -> int:
    if not ours(site):
        return 0
    return int(json.loads(get(url + "/stats/"))["renders"]["renders"])


def median_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for key, value in rows[0].items():
        if isinstance(value, dict):
            merged[key] = {k: statistics.median(r[key][k] for r in rows) for k in value}
        else:
            merged[key] = statistics.median(r[key] for r in rows)
    return merged


def run(
    site: str, connections: int, rate: float, runs: int, seconds: float, blocks: int = 1
) -> dict[str, Any]:
    rows = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as directory:
            rows.append(
                measure(site, Path(directory), connections, rate, seconds, blocks)
            )
    return median_of(rows)


HEADER = (
    f"{'site':19} {'N':>5} {'R/s':>5} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7} "
    f"{'stale99':>7} {'final':>7} {'lost':>5} {'frag/s':>8} {'rend/ch':>7} "
    f"{'cpu s':>6} {'ms/ch':>5} {'µs/frag':>7} {'RSS MiB idle/N/after':>21} {'KiB/str':>7} "
    f"{'thr':>5} {'gen%':>4}"
)


def line(site: str, connections: int, result: dict[str, Any]) -> str:
    latency = result["latency"]
    return (
        f"{site:19} {connections:5} {result['rate']:5.0f} {latency['p50']:7.1f} "
        f"{latency['p90']:7.1f} {latency['p99']:7.1f} {latency['max']:7.1f} "
        f"{result['staleness']['p99']:7.1f} {result['all_final_after']:7.1f} "
        f"{result['not_final']:5.0f} {result['fragments_per_s']:8.0f} "
        f"{result['renders_per_change']:7.1f} {result['cpu']:6.2f} "
        f"{result['ms_per_change']:5.1f} "
        f"{result['us_per_fragment']:7.1f} "
        f"{result['rss_idle']:6.0f}/{result['rss_with']:6.0f}/{result['rss_after']:6.0f}  "
        f"{result['kib_per_stream']:7.1f} {result['threads']:5.0f} "
        f"{result['loadgen_cpu'] * 100:4.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--sites",
        nargs="+",
        default=[s for s in SITES if s != THROUGH],
        choices=list(SITES),
    )
    parser.add_argument(
        "--connections", type=int, nargs="+", default=[1, 100, 1000, 5000]
    )
    parser.add_argument("--profile", metavar="DIR", help="py-spy the servers into DIR")
    parser.add_argument(
        "--only", choices=["matrix", "idle"], help="run one part of the benchmark"
    )
    args = parser.parse_args()
    if args.profile:
        PROFILE.append(args.profile)
    print(
        "Times in ms (latency: change -> fragment; final: until every page showed the"
    )
    print(
        f"last change). Medians of {args.runs} runs, {args.seconds:g} s of changes each."
    )
    if args.only != "idle":
        matrix(args)
    if args.only != "matrix":
        print_idle(args.connections[-1])


def print_idle(connections: int, cycles: int = 3, hold: float = 3.0) -> None:
    print(
        f"\n{connections} idle streams held {hold:g} s with a heartbeat every "
        f"{IDLE_HEARTBEAT:g} s, opened and closed {cycles} times on one server:"
    )
    print(
        f"{'cycle':>5} {'RSS MiB before/with/after':>26} {'KiB/stream':>10} "
        f"{'threads':>7} {'open':>5} {'pings/stream':>12}"
    )
    for number, row in enumerate(idle(connections, cycles, hold), start=1):
        print(
            f"{number:5} {row['before']:8.0f}/{row['with']:7.0f}/{row['after']:7.0f}  "
            f"{row['kib_per_stream']:10.1f} {row['threads']:7.0f} "
            f"{row['open']:5.0f} {row['pings_per_stream']:12.1f}",
            flush=True,
        )


RAMP = (20, 25, 30, 35, 40, 50, 60, 80, 100)  # changes/s tried at N = 1,000
STALENESS_BOUND = 100.0  # ms: the p99 a rate must keep to count as sustained


def matrix(args: argparse.Namespace) -> None:
    print(HEADER, flush=True)
    for connections in args.connections:
        row(args, connections, 20)
    if 1000 in args.connections:
        print("N = 1,000 at 100 changes/s:", flush=True)
        row(args, 1000, 100)
        rate = highest_rate(args)
        if rate is None:
            print(f"N = 1,000: no rate held (not even {RAMP[0]}/s)", flush=True)
        elif rate == RAMP[0]:
            print(f"N = 1,000: {rate}/s held, and no more (the first row)", flush=True)
        else:
            print(f"N = 1,000 at the highest rate sustained ({rate}/s):", flush=True)
            row(args, 1000, rate)
    print("N = 100 on a page of five blocks, two of them personal:", flush=True)
    result = run("reactive_blocks", 100, 20, args.runs, args.seconds, blocks=5)
    print(line("reactive_blocks", 100, result), flush=True)


def row(args: argparse.Namespace, connections: int, rate: float) -> None:
    """Every site at one load, then how they compare."""
    results = {}
    sites = list(args.sites)
    if connections == 1000 and "reactive_blocks" in sites and THROUGH not in sites:
        sites.insert(sites.index("reactive_blocks") + 1, THROUGH)
    for site in sites:
        results[site] = run(site, connections, rate, args.runs, args.seconds)
        print(line(site, connections, results[site]), flush=True)
    ours = results.get("reactive_blocks")
    peer, floor = results.get("django-eventstream"), results.get("daphne floor")
    through = results.get(THROUGH)
    notes = []
    if ours and peer:
        notes.append(
            f"CPU per fragment x{peer['us_per_fragment'] / ours['us_per_fragment']:.2f}"
            f" and staleness p99 x{peer['staleness']['p99'] / ours['staleness']['p99']:.2f}"
            f" in reactive_blocks' favour"
        )
    if ours and floor:
        notes.append(
            f"against daphne's floor: staleness p99 "
            f"x{ours['staleness']['p99'] / floor['staleness']['p99']:.2f}, CPU per "
            f"change x{ours['ms_per_change'] / floor['ms_per_change']:.2f}, per "
            f"fragment x{ours['us_per_fragment'] / floor['us_per_fragment']:.2f}"
        )
    if ours and through:
        saved = through["us_per_fragment"] - ours["us_per_fragment"]
        notes.append(f"direct writes save {saved:.1f} µs per fragment")
    if notes:
        print(f"{'  compared':19} {connections:5}   " + "; ".join(notes), flush=True)


def highest_rate(args: argparse.Namespace) -> int | None:
    """The highest rate in RAMP whose staleness p99 at N = 1,000 stays within
    STALENESS_BOUND, one run per step."""
    best = None
    for rate in RAMP:
        result = run("reactive_blocks", 1000, rate, 1, args.seconds)
        sustained = (
            result["staleness"]["p99"] <= STALENESS_BOUND
            and result["not_final"] == 0
            and result["rate"] >= 0.95 * rate
        )
        print(
            f"  ramp {rate:4}/s: staleness p99 {result['staleness']['p99']:.0f} ms, "
            f"{result['rate']:.0f} changes/s made"
            + ("" if sustained else " - not sustained"),
            flush=True,
        )
        if not sustained:
            break
        best = rate
    return best


if __name__ == "__main__":
    main()
