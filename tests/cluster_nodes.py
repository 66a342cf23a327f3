"""Several daphne processes of the cluster project (tests/cluster) on one Redis and
one database, as behind a proxy: for tests/test_cluster.py and the chaos soak
(bench/soak.py)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

from tests.live_project import Live
from tests.live_server import ROOT, served

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.redis_server import RedisServer

SETTINGS = "tests.cluster.settings"
APPLICATION = "tests.cluster.asgi:application"
REFRESH = 0.5  # presence refresh of every process: the dead stop counting in 1 s
HEARTBEAT = 0.4


class Node(Live):
    """One daphne process of the cluster."""

    def __init__(self, url: str, process: subprocess.Popen[bytes]) -> None:
        super().__init__(url)
        self.process = process

    def stream_path(self, pk: int = 1, cookie: str | None = None) -> str:
        """The signed stream URL (path and query) of a page rendered here."""
        url, _, _ = self.page(pk, cookie)
        return url[len(self.url) :]

    def save(self, title: str, pk: int = 1) -> None:
        status, _, text = self.request(f"/save/{pk}/", {"title": title})
        assert status == 200, text

    def lock(self, title: str, to: str, pk: int = 1) -> None:
        """Save a new title and who alone may watch, in one save."""
        status, _, text = self.request(
            f"/lock/{pk}/", {"title": title, "locked_to": to}
        )
        assert status == 200, text

    def notify(self, text: str, to: list[str], pk: int = 1) -> None:
        status, _, body = self.request(f"/notify/{pk}/", {"text": text, "to": to})
        assert status == 200, body

    def presence(self, pk: int = 1) -> dict[str, Any]:
        return json.loads(self.request(f"/presence/{pk}/")[2])


class Cluster:
    def __init__(self, directory: Path, redis: RedisServer) -> None:
        self.directory = directory
        self.redis = redis
        self.env = {
            "LIVE_DATABASE": str(directory / "db.sqlite3"),
            "CLUSTER_REDIS_URL": redis.url,
            "CLUSTER_PREFIX": f"cluster-{directory.name}",
            "CLUSTER_PRESENCE_REFRESH": str(REFRESH),
            "LIVE_HEARTBEAT": str(HEARTBEAT),
            # Every process's figures, summed by whichever one is scraped.
            "PROMETHEUS_MULTIPROC_DIR": str(directory / "metrics"),
        }
        (directory / "metrics").mkdir(exist_ok=True)
        self._stack = contextlib.ExitStack()

    def setup(self) -> None:
        self.manage("migrate", "--run-syncdb", "--noinput", "-v0")
        self.shell("Document.objects.create(pk=1, title='Doc 1')")

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "django", *args],
            cwd=ROOT,
            env={
                **os.environ,
                **self.env,
                "DJANGO_SETTINGS_MODULE": SETTINGS,
                "PYTHONPATH": str(ROOT),
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def shell(self, code: str) -> str:
        """Run ``code`` in ``manage.py shell``: a process that only emits."""
        return self.manage("shell", "-c", f"from tests.models import Document\n{code}")

    def node(self, log_path: Path | None = None) -> Node:
        url, process = self._stack.enter_context(
            served(APPLICATION, SETTINGS, self.env, log_path=log_path)
        )
        return Node(url, process)

    def close(self) -> None:
        self._stack.close()


@contextlib.contextmanager
def cluster_on(directory: Path, redis: RedisServer) -> Iterator[Cluster]:
    cluster = Cluster(directory, redis)
    try:
        cluster.setup()
        yield cluster
    finally:
        cluster.close()
