"""Where a change's time goes on the server: py-spy under bench/e2e.py's load.

Run with ``python bench/profile.py --out DIR``. It serves N streams of one page
(1,000 by default) at 20 changes/s, a tracked save each, on reactive_blocks and on
daphne's floor (a bare ASGI app writing a ready-made frame), one run each, with
py-spy sampling the server at 250 Hz. It writes each server's flame graph (SVG)
and raw stacks to DIR and prints the samples by layer, from each sample's innermost
Python frame that belongs to a layer: the save, the render, the SSE encoding, the
direct socket write, the hub's bookkeeping, Channels' send, daphne's HTTP layer,
Twisted's write and the event loop's wake-ups;
with each layer's share of the CPU per fragment.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import e2e  # noqa: E402

# Layers by the file of a sample's innermost frame: the first that matches.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("save (ORM, commit)", ("django/db/", "reactive_blocks/tracking/", "sqlite3")),
    (
        "render (templates)",
        ("django/template/", "render_block/", "reactive_blocks/rendering.py"),
    ),
    ("encode (SSE frames)", ("reactive_blocks/streams/sse.py",)),
    # The direct write: one socket send() per fragment, bypassing daphne and Twisted.
    ("socket write (outlet)", ("reactive_blocks/streams/outlet.py",)),
    ("hub bookkeeping (ours)", ("reactive_blocks/", "bench/floor")),
    ("Channels / asgiref", ("channels/", "asgiref/")),
    ("daphne's HTTP layer", ("daphne/",)),
    (
        "wake-ups (event loop)",
        ("asyncio/", "selectors.py", "twisted/internet/asyncioreactor.py"),
    ),
    ("Twisted's write", ("twisted/",)),
    ("Django request handling", ("django/",)),
    ("threads (sync_to_async)", ("concurrent/futures/", "threading.py")),
]
OTHER = "other (logging, stdlib, ...)"


def layer_of(frame: str) -> str:
    for name, markers in LAYERS:
        if any(marker in frame for marker in markers):
            return name
    return OTHER


def samples_by_layer(raw: Path) -> collections.Counter[str]:
    """py-spy's raw format: ``frame;frame;...;innermost count`` per line."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        counts[layer_of_stack(stack.split(";"))] += int(number)
    return counts


def layer_of_stack(frames: list[str]) -> str:
    """The layer of the innermost frame that belongs to one: a helper of the
    standard library (a namedtuple, a lock) counts for the code that called it."""
    for frame in reversed(frames):
        layer = layer_of(frame)
        if layer != OTHER:
            return layer
    return OTHER


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    e2e.PROFILE.append(str(args.out))
    results, layers = {}, {}
    for site in ("reactive_blocks", "daphne floor"):
        results[site] = e2e.run(site, args.connections, args.rate, 1, args.seconds)
        raw = args.out / f"{site.replace(' ', '-')}-{args.connections}.txt"
        layers[site] = samples_by_layer(raw)
    print(
        f"N = {args.connections}, {args.rate:g} changes/s, one run each: samples by "
        "the layer of their innermost frame, and that share of the CPU per fragment"
    )
    sites = list(results)
    print(f"{'layer':28}" + "".join(f"{s:>26}" for s in sites))
    names = [name for name, _ in LAYERS] + [OTHER]
    for name in names:
        cells = []
        for site in sites:
            total = sum(layers[site].values()) or 1
            share = layers[site][name] / total
            cells.append(
                f"{share:6.1%} {share * results[site]['us_per_fragment']:6.1f} µs/frag"
            )
        print(f"{name:28}" + "".join(f"{c:>26}" for c in cells))
    for site in sites:
        result = results[site]
        print(
            f"{site}: {result['us_per_fragment']:.1f} µs of CPU per fragment, "
            f"staleness p99 {result['staleness']['p99']:.0f} ms, "
            f"{sum(layers[site].values())} samples"
        )
    print(f"Flame graphs: {args.out}/*.svg")


if __name__ == "__main__":
    main()
