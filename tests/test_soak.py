"""The chaos soak's short form (bench/soak.py; ``make soak`` runs it ten minutes):
three daphne processes on Redis under load while one is killed, Redis restarts and
a reader pauses. Every page converges, nothing reaches a reader it must not, and no
process logs an error."""

from __future__ import annotations

import pytest

from bench.soak import SHORT, print_report, soak
from tests.processes import require

pytestmark = pytest.mark.timeout(300)


def test_one_cycle_of_faults_under_load_converges_without_leaks_or_errors(
    tmp_path, capsys
):
    require("redis-server")
    report = soak(SHORT, tmp_path)
    with capsys.disabled():
        print_report(report, 0)
    assert report.unsettled == []
    assert report.leaks == []
    assert report.errors == []
    # The load really ran, and every fault was met (three, then the end).
    assert report.changes >= 10
    assert report.fragments >= 50
    assert [fault for fault, _ in report.settled] == [
        "cycle 1: kill -9",
        "cycle 1: Redis restart",
        "cycle 1: a paused reader",
        "the end",
    ]
    assert report.resyncs >= 1  # the Redis restart made every page resync
