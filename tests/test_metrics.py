"""The Prometheus figures: their names, who may read them, and what a real daphne
process counts as streams open, are refused, get changes and resync."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory, override_settings
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from reactive_blocks.conf import conf
from reactive_blocks.metrics import Metrics, reset_metrics
from reactive_blocks.views import metrics
from tests.live_project import Live, live_project, samples
from tests.live_server import ROOT
from tests.sse_client import SSEStream

pytestmark = pytest.mark.timeout(120)

FAMILIES = {
    "reactive_blocks_connections_active": "gauge",
    "reactive_blocks_connections_rejected": "counter",
    "reactive_blocks_block_renders": "counter",
    "reactive_blocks_messages_sent": "counter",
    "reactive_blocks_messages_dropped": "counter",
    "reactive_blocks_resyncs": "counter",
    "reactive_blocks_commit_to_send_seconds": "histogram",
    "reactive_blocks_bus_lag_seconds": "histogram",
    "reactive_blocks_bus_messages_refused": "counter",
}
TOKEN = "a-scraper-token-0123456789"


def test_every_documented_family_is_exported_with_its_type():
    text = generate_latest(Metrics().registry).decode()
    families = {
        f.name: f.type
        for f in text_string_to_metric_families(text)
        if not f.name.endswith("_created")  # prometheus_client's, unless disabled
    }
    assert families == FAMILIES
    # Counters are exposed with _total, as Prometheus names them.
    assert "reactive_blocks_messages_sent_total 0.0" in text
    assert 'reactive_blocks_block_renders_total{personal="false"} 0.0' in text


def _request(user=None, **headers):
    request = RequestFactory().get("/metrics/", headers=headers)
    request.user = user or AnonymousUser()
    return request


STAFF = SimpleNamespace(is_active=True, is_staff=True)
MEMBER = SimpleNamespace(is_active=True, is_staff=False)
FORMER_STAFF = SimpleNamespace(is_active=False, is_staff=True)


@pytest.mark.parametrize(
    ("user", "headers", "status"),
    [
        (None, {}, 403),
        (MEMBER, {}, 403),
        (FORMER_STAFF, {}, 403),
        (STAFF, {}, 200),
        (None, {"Authorization": f"Bearer {TOKEN}"}, 200),
        (None, {"Authorization": f"Bearer {TOKEN}x"}, 403),
        (None, {"Authorization": TOKEN}, 403),
    ],
)
def test_metrics_are_for_staff_or_a_scraper_with_the_token(user, headers, status):
    reset_metrics()
    with override_settings(REACTIVE_BLOCKS={"METRICS_TOKEN": TOKEN}):
        response = metrics(_request(user, **headers))
    assert response.status_code == status
    if status == 200:
        assert response["Content-Type"].startswith("text/plain; version=")
        assert b"reactive_blocks_connections_active 0.0" in response.content
    else:
        assert b"Metrics are for staff" in response.content


@override_settings(REACTIVE_BLOCKS={"METRICS_PUBLIC": True})
def test_a_setting_opens_the_metrics_to_anyone():
    assert metrics(_request()).status_code == 200


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"METRICS_PUBLIC": "yes"}, "must be True or False, got 'yes'"),
        ({"METRICS_TOKEN": "short"}, "at least 16 characters, or None; got '5 char"),
        ({"METRICS_TOKEN": 12345}, "at least 16 characters, or None; got 12345"),
    ],
)
def test_bad_metrics_settings_say_what_is_wrong(settings, message):
    with (
        override_settings(REACTIVE_BLOCKS=settings),
        pytest.raises(ImproperlyConfigured, match=message),
    ):
        _ = conf.METRICS_PUBLIC, conf.METRICS_TOKEN


# A real daphne process -----------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Live:
    with live_project(tmp_path_factory.mktemp("metrics")) as project:
        yield project


def value(figures, name: str, **labels: str) -> float:
    return figures.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_a_stream_is_counted_open_served_and_closed(live):
    live.reset()
    before = live.metrics()
    url, _, _ = live.page(1)
    stream = await SSEStream.open(url, {})
    try:
        assert stream.status == 200
        live.wait_for(lambda s: s["open"] == 1)
        opened = live.metrics()
        assert value(opened, "reactive_blocks_connections_active") == 1
        live.change(set={"title": "counted"}, paths=["doc.title"])
        assert (await stream.next_event()).event in {"title", "greeting"}
        served = live.metrics()
    finally:
        await stream.close()
    live.wait_for(lambda s: s["open"] == 0)
    closed = live.metrics()
    assert value(closed, "reactive_blocks_connections_active") == 0

    def grew(name: str, **labels: str) -> float:
        return value(served, name, **labels) - value(before, name, **labels)

    assert grew("reactive_blocks_messages_sent_total") >= 1
    assert grew("reactive_blocks_block_renders_total", personal="false") >= 1
    assert grew("reactive_blocks_commit_to_send_seconds_count") >= 1
    # On the in-process bus nothing crosses processes: no bus lag is measured.
    assert value(served, "reactive_blocks_bus_lag_seconds_count") == 0


async def test_refused_streams_are_counted_by_reason(live):
    live.reset()
    before = live.metrics()
    url, _, _ = live.page(1)
    forged = url.replace("token=", "token=x")
    stream = await SSEStream.open(forged, {})
    assert stream.status == 403
    await stream.close()
    after = live.metrics()
    rejected = "reactive_blocks_connections_rejected_total"
    assert (
        value(after, rejected, reason="token") - value(before, rejected, reason="token")
        == 1
    )


async def test_a_stream_behind_its_scope_is_counted_as_a_resync(live):
    live.reset()
    before = value(live.metrics(), "reactive_blocks_resyncs_total")
    url, _, _ = live.page(1)
    live.change(set={"content": "changed while away"}, paths=["doc.content"])
    stream = await SSEStream.open(url, {"Last-Event-ID": "0"})
    try:
        await stream.next_event()
    finally:
        await stream.close()
    assert value(live.metrics(), "reactive_blocks_resyncs_total") == before + 1


def test_samples_read_prometheus_text():
    text = '# TYPE x counter\nx_total{a="b"} 2.0\n'
    assert samples(text) == {("x_total", (("a", "b"),)): 2.0}


def test_the_grafana_dashboard_graphs_every_family_and_nothing_else():
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    named = {
        name.removesuffix("_total").removesuffix("_bucket")
        for query in queries
        for name in re.findall(r"reactive_blocks_\w+", query)
    }
    assert named == set(FAMILIES)
