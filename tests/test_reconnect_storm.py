"""A restarted server is reconnected to by every tab, which converges: bench/
reconnect.py's storm at a size the suite can afford (the spread it measures at
2,000 streams is a benchmark figure, not a test of wall-clock time)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from bench.drive import Server
from bench.reconnect import APPLICATION, SETTINGS, storm

pytestmark = pytest.mark.timeout(240)


async def test_every_tab_reconnects_to_a_restarted_server_and_converges():
    with tempfile.TemporaryDirectory() as folder:
        server = Server(
            SETTINGS, APPLICATION, {"BENCH_DATABASE": str(Path(folder) / "db.sqlite3")}
        )
        try:
            figures = await storm(server, 100)
        finally:
            server.close()
    assert figures["reconnected"] == 100
    assert figures["converged"] == 100
    # Jittered: they did not all come back at the same instant.
    assert figures["last"] > figures["first"]
