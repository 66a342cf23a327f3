"""Drive the live project (tests/live) served by a real daphne process."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from prometheus_client.parser import text_string_to_metric_families

from tests.live_server import ROOT, daphne

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

SETTINGS = "tests.live.settings"


class Live:
    """A running live project and the requests tests make to it."""

    def __init__(self, url: str) -> None:
        self.url = url

    def request(
        self, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode()

    def page(self, pk: int = 1, cookie: str | None = None) -> tuple[str, str, str]:
        """(stream URL, connection id, page HTML) of a freshly rendered page."""
        status, _, page = self.request(f"/docs/{pk}/", headers=_cookie(cookie))
        assert status == 200, page
        connect = html.unescape(
            re.search(r'data-reactive-stream="([^"]+)"', page).group(1)
        )
        headers = json.loads(
            html.unescape(re.search(r'hx-headers="([^"]+)"', page).group(1))
        )
        # The tab's claim: its connection id, signed for this session.
        return self.url + connect, headers["X-Reactive-Connection"], page

    def change(
        self, origin: str | None = None, cookie: str | None = None, **body: Any
    ) -> int:
        headers = {"Content-Type": "application/json", **_cookie(cookie)}
        if origin:
            headers["X-Reactive-Connection"] = origin
        status, _, text = self.request("/change/", body, headers)
        assert status == 200, text
        return int(json.loads(text)["sequence"])

    def login(self, username: str, *, superuser: bool = False) -> tuple[str, str]:
        """(session cookie, user id) of a signed-in user."""
        query = "?superuser=1" if superuser else ""
        req = urllib.request.Request(f"{self.url}/login/{username}/{query}")
        with urllib.request.urlopen(req, timeout=10) as response:
            cookie = next(
                c.split(";", 1)[0]
                for c in response.headers.get_all("Set-Cookie")
                if c.startswith("sessionid=")
            )
            return cookie, str(json.loads(response.read())["id"])

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """The process's Prometheus samples, by name and labels."""
        status, _, text = self.request(
            "/metrics/", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
        assert status == 200, text
        return samples(text)

    def stats(self) -> dict[str, Any]:
        return json.loads(self.request("/stats/")[2])

    def reset(self) -> None:
        self.request("/reset/")

    def wait_for(self, predicate: Any, limit: float = 5.0) -> dict[str, Any]:
        """Poll the stats until ``predicate(stats)`` holds, within ``limit`` seconds."""
        deadline = time.monotonic() + limit
        while True:
            stats = self.stats()
            if predicate(stats):
                return stats
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {limit}s; stats: {stats}")
            time.sleep(0.02)  # polling a condition with a deadline


METRICS_TOKEN = "scraper-token-of-the-tests"  # tests/live/settings.py


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text as {(sample name, sorted labels): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _cookie(cookie: str | None) -> dict[str, str]:
    return {"Cookie": cookie} if cookie else {}


@contextmanager
def live_project(directory: Path, **knobs: str) -> Iterator[Live]:
    """Migrate a fresh database and serve the live project with daphne."""
    env = {"LIVE_DATABASE": str(directory / "db.sqlite3"), **knobs}
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env={
            **os.environ,
            **env,
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "PYTHONPATH": str(ROOT),
        },
        check=True,
        capture_output=True,
        timeout=120,
    )
    with daphne("tests.live.asgi:application", SETTINGS, env) as url:
        yield Live(url)
