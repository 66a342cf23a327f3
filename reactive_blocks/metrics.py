"""What this process reports to Prometheus, through prometheus_client.

Each process counts into its own ``Metrics``. With ``PROMETHEUS_MULTIPROC_DIR`` set
in the environment of every process of a machine (prometheus_client's multiprocess
mode), each figure is also written to a file there, and ``collect()`` sums the
files of all of them: behind one address, a scrape reaches any one process, so one
process's own figures would be a random sample. Without it, ``collect()`` gives
this process's figures (one process, or one scrape address per process).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

__all__ = ["Metrics", "collect", "get_metrics", "reset_metrics"]

PREFIX = "reactive_blocks_"
# Seconds from a commit to the browser: most within a frame or two, the tail
# under load, and the storms beyond.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The figures of one process, in a registry of their own (tests make fresh
    ones; ``get_metrics()`` is the process's)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.connections_active = Gauge(
            PREFIX + "connections_active",
            "Streams open now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.connections_rejected = Counter(
            PREFIX + "connections_rejected",
            "Streams refused, by reason.",
            ["reason"],
            registry=registry,
        )
        self.block_renders = Counter(
            PREFIX + "block_renders",
            "Blocks rendered: once for many viewers (personal=false), or for one.",
            ["personal"],
            registry=registry,
        )
        self.messages_sent = Counter(
            PREFIX + "messages_sent",
            "Messages written to streams (one per stream per change).",
            registry=registry,
        )
        self.messages_dropped = Counter(
            PREFIX + "messages_dropped",
            "Changes or messages that did not reach a stream as such, by reason; "
            "the pages concerned resync.",
            ["reason"],
            registry=registry,
        )
        self.resyncs = Counter(
            PREFIX + "resyncs",
            "Streams sent every block of their page again, after a loss.",
            registry=registry,
        )
        self.commit_to_send = Histogram(
            PREFIX + "commit_to_send_seconds",
            "From the change's commit to the last of its streams' writes here.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.bus_lag = Histogram(
            PREFIX + "bus_lag_seconds",
            "From a change's publication in one process to its arrival in this one.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.bus_messages_refused = Counter(
            PREFIX + "bus_messages_refused",
            "Bus messages ignored, by reason (a stray or newer publisher).",
            ["reason"],
            registry=registry,
        )
        for personal in ("false", "true"):
            self.block_renders.labels(personal=personal)


_lock = threading.Lock()
_metrics: Metrics | None = None


def get_metrics() -> Metrics:
    """This process's figures."""
    global _metrics
    metrics = _metrics  # read without the lock: this is on every write
    if metrics is not None:
        return metrics
    with _lock:
        if _metrics is None:
            _metrics = Metrics()
        return _metrics


def reset_metrics() -> Metrics:
    """Start this process's figures from zero (tests)."""
    global _metrics
    with _lock:
        _metrics = Metrics()
        return _metrics


def collect() -> bytes:
    """The Prometheus text of this process, or of every process of the machine."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return generate_latest(get_metrics().registry)
    _forget_dead(Path(directory))
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def _forget_dead(directory: Path) -> None:
    """Drop the open-stream gauges of processes that are gone (a killed daphne
    calls no exit hook): their streams are not open anywhere. Their counters stay
    in the sums, as Prometheus expects of counters."""
    for path in directory.glob("gauge_live*_*.db"):
        pid = path.stem.rpartition("_")[2]
        if pid.isdigit() and not _alive(int(pid)):
            mark_process_dead(int(pid), str(directory))  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True
