"""What a process reports about itself (bus/status.py), and manage.py
reactive_status. Several daphne processes on Redis: tests/test_cluster.py."""

from __future__ import annotations

import contextlib
import io
import json
import time

import pytest
from django.core.management import call_command
from django.db import OperationalError
from django.test import override_settings

from reactive_blocks import ConnectionInfo, DatabaseBus, ReactiveBus, get_bus
from reactive_blocks.bus.status import MAX_SCOPES, process_name
from reactive_blocks.models import ProcessStatus
from reactive_blocks.streams.hubs import get_hubs


def status(*args: str) -> str:
    out = io.StringIO()
    call_command("reactive_status", *args, stdout=out)
    return out.getvalue()


def test_a_report_names_the_process_its_bus_and_its_busiest_scopes():
    bus = ReactiveBus()
    subscriptions = [
        bus.subscribe(f"doc-{n}", ConnectionInfo(f"tab-{n}-{k}"))
        for n in range(MAX_SCOPES + 5)
        for k in range(1 + (n == 7) * 3)
    ]
    shared = bus.subscribe_shared("doc-3")
    shared.join(ConnectionInfo("tab-shared"))
    report = bus.report()
    assert report["process"] == process_name()
    assert report["backend"] == "ReactiveBus"
    assert report["bus"]["reachable"] is True
    assert report["bus"]["subscribers"] == len(subscriptions) + 1
    assert report["scope_count"] == MAX_SCOPES + 5
    assert len(report["scopes"]) == MAX_SCOPES  # bounded, busiest first
    assert report["scopes"][0] == {"scope": "doc-7", "subscribers": 4, "connections": 4}
    assert {"scope": "doc-3", "subscribers": 2, "connections": 2} in report["scopes"]
    assert report["streams"] is None  # no streams layer in this process yet
    bus.close()


def test_the_streams_layer_adds_its_streams_to_the_report():
    hubs = get_hubs()
    report = get_bus().report()
    assert report["streams"]["open"] == hubs.open_count
    assert set(report["streams"]) == {"open", "visitors", "hubs", "renders"}


def test_a_failing_source_never_fails_the_report():
    bus = ReactiveBus()

    def broken() -> dict[str, object]:
        raise RuntimeError("no")

    bus.status_source = broken
    assert bus.report()["streams"] == {"error": "RuntimeError('no')"}


def test_reactive_status_on_the_in_process_bus_says_what_it_can_show():
    get_hubs()  # a process that serves streams
    text = status()
    assert "lives in one process: only this command's own process" in text
    assert "1 process(es) report through ReactiveBus." in text
    assert f"{process_name()}  up " in text
    assert "streams: 0 open" in text
    assert json.loads(status("--json"))["processes"][0]["pid"] > 0


@pytest.mark.django_db(transaction=True)
def test_the_database_bus_keeps_the_reports_of_the_processes_that_serve():
    bus = DatabaseBus(poll_interval=0.05)
    bus.status_interval = 0.05
    bus.status_source = lambda: {"open": 1}  # it serves streams
    try:
        subscription = bus.subscribe("doc-1", ConnectionInfo("tab-1"))
        (report,) = until(lambda: [r for r in bus.statuses() if r["scopes"]])
        assert report["process"] == process_name()
        assert report["backend"] == "DatabaseBus"
        assert report["scopes"] == [
            {"scope": "doc-1", "subscribers": 1, "connections": 1}
        ]
        subscription.close()
    finally:
        bus.close()
    # Its reader says it is gone as it stops.
    until(lambda: not ProcessStatus.objects.exists())


def until(found, limit: float = 10.0):
    """``found()`` once it is truthy, polled within ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while True:
        # The test database is in memory, shared between threads: a table the
        # bus's thread is writing is locked for a moment.
        with contextlib.suppress(OperationalError):
            if result := found():
                return result
        assert time.monotonic() < deadline, f"nothing found by {found}"
        time.sleep(0.02)  # polling a condition with a deadline


@pytest.mark.django_db(transaction=True)
def test_reports_of_processes_gone_are_not_listed_and_are_deleted():
    ProcessStatus.objects.create(process="elsewhere:1", reported=0.0, report="{}")
    ProcessStatus.objects.create(
        process="elsewhere:2", reported=9e9, report='{"process": "elsewhere:2"}'
    )
    ProcessStatus.objects.create(process="elsewhere:3", reported=9e9, report="not json")
    bus = DatabaseBus()
    assert bus.statuses() == [{"process": "elsewhere:2"}]
    assert not ProcessStatus.objects.filter(process="elsewhere:1").exists()


@pytest.mark.django_db(transaction=True)
@override_settings(REACTIVE_BLOCKS={"BUS": {"BACKEND": "reactive_blocks.DatabaseBus"}})
def test_reactive_status_lists_each_reporting_process():
    ProcessStatus.objects.create(
        process="web-2:41",
        reported=9e9,
        report=json.dumps(
            {
                "process": "web-2:41",
                "pid": 41,
                "started": 0,
                "reported": 9e9,
                "backend": "DatabaseBus",
                "bus": {"reachable": True, "epoch": "db-1", "emitted": 3},
                "scope_count": 1,
                "scopes": [{"scope": "doc-1", "subscribers": 1, "connections": 2}],
                "streams": {"open": 2, "visitors": 1, "hubs": 1, "renders": {}},
            }
        ),
    )
    text = status()
    assert "1 process(es) report through DatabaseBus." in text
    assert "web-2:41  up " in text
    assert "bus: reachable, epoch db-1, emitted 3, dropped 0" in text
    assert "streams: 2 open, 1 visitors, 1 hubs" in text
    assert "    doc-1  2 connection(s), 1 subscription(s)" in text
    assert "Connections by scope, every process:\n  doc-1  2" in text
