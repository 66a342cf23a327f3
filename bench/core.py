"""Core engine benchmark: bus fan-out and dependency lookups.

Run with ``make bench-core`` or ``python bench/core.py``. Prints medians of several
runs; the machine is shared, so compare medians, not single runs.

Targets (issue 2): >= 300,000 subscriber-deliveries/s on one core, and
``affected_blocks`` median under 20 µs with 10,000 blocks and 200 derivations.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import threading
import time

from reactive_blocks import ChangeEvent, DependencyIndex, ReactiveBus

BURST = 2_000


def emitter_cost(subscribers: int, runs: int) -> tuple[float, float]:
    """Median events/s of ``emit_sync`` with idle subscribers (the emitter's own cost)."""
    rates = []
    events = [ChangeEvent("doc-1", frozenset({f"doc.f{n % 50}"})) for n in range(BURST)]
    for _ in range(runs):
        bus = ReactiveBus(maxsize=BURST)
        subs = [bus.subscribe("doc-1") for _ in range(subscribers)]
        emit = bus.emit_sync
        start = time.perf_counter()
        for event in events:
            emit(event)
        elapsed = time.perf_counter() - start
        rates.append(BURST / elapsed)
        assert all(s.dropped_count == 0 for s in subs)
        del subs
    events_per_s = statistics.median(rates)
    return events_per_s, events_per_s * subscribers


def end_to_end(subscribers: int, runs: int) -> float:
    """Median subscriber-deliveries/s from first emit until every subscriber has all."""
    rates = []
    for _ in range(runs):
        bus = ReactiveBus(maxsize=BURST)
        expected = BURST * subscribers
        done = threading.Event()
        ready = threading.Event()

        counts = [0]

        async def consume(sub, expected=expected, done=done, counts=counts) -> None:
            while (batch := await sub.next_batch()) is not None:
                counts[0] += len(batch.events)
                if counts[0] == expected:
                    done.set()

        async def main(bus=bus, ready=ready) -> None:
            subs = [bus.subscribe("doc-1") for _ in range(subscribers)]
            tasks = [asyncio.ensure_future(consume(s)) for s in subs]
            await asyncio.sleep(0)
            ready.set()
            await asyncio.gather(*tasks)

        thread = threading.Thread(target=asyncio.run, args=(main(),))
        thread.start()
        ready.wait(30)
        event = ChangeEvent("doc-1", frozenset({"doc.title"}))
        start = time.perf_counter()
        for _ in range(BURST):
            bus.emit_sync(event)
        if not done.wait(120):
            raise RuntimeError(f"only {counts[0]} of {expected} deliveries arrived")
        elapsed = time.perf_counter() - start
        bus.close()
        thread.join(30)
        rates.append(expected / elapsed)
    return statistics.median(rates)


def build_index(rng: random.Random) -> tuple[DependencyIndex, list[str]]:
    """10,000 blocks over 1,000 templates, 200 derivations, realistic path shapes."""
    roots = [f"obj{n}" for n in range(100)]
    universe = [f"{r}.f{f}" for r in roots for f in range(30)]
    deep = [f"{p}.s{s}" for p in universe[::3] for s in range(5)]

    def some_path() -> str:
        roll = rng.random()
        if roll < 0.03:
            return rng.choice(roots)
        if roll < 0.75:
            return rng.choice(universe)
        return rng.choice(deep)

    index = DependencyIndex()
    for template in range(1_000):
        for block in range(10):
            paths = {some_path() for _ in range(rng.randint(2, 6))}
            index.register_block(f"t{template}.html", f"b{block}", paths)
    for n in range(200):
        sources = {some_path() for _ in range(rng.randint(1, 3))}
        index.derive(f"{rng.choice(roots)}.derived{n}", from_paths=sources)
    return index, [*universe, *deep, *roots]


def lookup_times(runs: int) -> dict[str, float]:
    rng = random.Random(42)
    index, universe = build_index(rng)
    queries = [
        frozenset(rng.choice(universe) for _ in range(rng.randint(1, 5)))
        for _ in range(2_000)
    ]
    results: dict[str, list[float]] = {"cold": [], "mixed": [], "warm": [], "size": []}
    clock = time.perf_counter
    for _ in range(runs):
        cold, mixed, warm = [], [], []
        for query in queries:
            index._forget()  # nothing memoised: the first lookup of these paths
            start = clock()
            found = index.affected_blocks(query)
            cold.append(clock() - start)
            results["size"].append(len(found))
        for query in queries:
            index.affected_blocks(query)  # memoise every path and every query
        for query in queries:  # every path seen before, each query new
            index._query_memo.clear()
            start = clock()
            index.affected_blocks(query)
            mixed.append(clock() - start)
        for query in queries:
            index.affected_blocks(query)
        for query in queries:  # the same queries again
            start = clock()
            index.affected_blocks(query)
            warm.append(clock() - start)
        results["cold"].append(statistics.median(cold))
        results["mixed"].append(statistics.median(mixed))
        results["warm"].append(statistics.median(warm))
    return {key: statistics.median(values) for key, values in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median)")
    args = parser.parse_args()

    print(f"emit_sync, burst of {BURST} events, medians of {args.runs} runs")
    print(
        f"{'subscribers':>11}  {'events/s':>12}  {'deliveries/s':>13}  {'end-to-end deliveries/s':>24}"
    )
    for subscribers in (0, 1, 100, 1_000):
        events_per_s, deliveries = emitter_cost(subscribers, args.runs)
        e2e = end_to_end(subscribers, args.runs) if subscribers else float("nan")
        print(
            f"{subscribers:>11}  {events_per_s:>12,.0f}  {deliveries:>13,.0f}  {e2e:>24,.0f}"
        )

    figures = lookup_times(args.runs)
    print()
    print("affected_blocks, 10,000 blocks, 200 derivations, 1-5 changed paths")
    print(
        f"  median, first lookup of the paths (memo empty): {figures['cold'] * 1e6:8.1f} µs"
    )
    print(
        f"  median, known paths in a new combination:       {figures['mixed'] * 1e6:8.1f} µs"
    )
    print(
        f"  median, a repeated query:                       {figures['warm'] * 1e6:8.1f} µs"
    )
    print(f"  median blocks affected per lookup:              {figures['size']:8.0f}")


if __name__ == "__main__":
    main()
