"""What one huge save costs a process whose streams stopped reading.

Run with ``python bench/bigsave.py``. It serves the test suite's live project with
daphne, opens 60 streams that never read a byte (tiny receive buffers) and one that
reads, saves a 2.4 MB body (more once escaped) and prints the server's RSS before
the save, once it was rendered, after every stream closed, and after the process
handed freed memory back (``malloc_trim``, a second after such a block), for
``--runs`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from tests.live_project import Live, live_project  # noqa: E402
from tests.sse_client import SSEStream  # noqa: E402
from tests.test_hardening import never_reading  # noqa: E402

STALLED = 60
MIB = 1 << 20


async def one_run(live: Live) -> tuple[float, ...]:
    live.reset()
    stalled = [never_reading(live.page(1)[0]) for _ in range(STALLED)]
    reader = await SSEStream.open(live.page(1)[0])
    live.wait_for(lambda s: s["open"] == STALLED + 1)
    stats = live.stats()
    before, renders, trims = stats["rss"], stats["renders"]["renders"], stats["trims"]
    live.change(set={"content": "<&>" * 800_000}, paths=["doc.content"])
    saved = live.wait_for(lambda s: s["renders"]["renders"] > renders, 30)["rss"]
    for sock in stalled:
        sock.close()
    await reader.close()
    closed = live.wait_for(lambda s: s["open"] == 0, 30)["rss"]
    trimmed = live.wait_for(lambda s: s["trims"] > trims, 30)["rss"]
    return before / MIB, saved / MIB, closed / MIB, trimmed / MIB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"nproc {os.cpu_count()}; {STALLED} streams that never read; RSS in MiB")
    for number in range(args.runs):
        # A fresh server each run: what one run keeps must not hide the next.
        with (
            tempfile.TemporaryDirectory() as folder,
            live_project(Path(folder)) as live,
        ):
            started = time.perf_counter()
            before, saved, closed, trimmed = asyncio.run(one_run(live))
        print(
            f"run {number + 1}: before {before:.0f}, after the save {saved:.0f}, "
            f"streams closed {closed:.0f}, memory handed back {trimmed:.0f} "
            f"({time.perf_counter() - started:.1f} s)"
        )


if __name__ == "__main__":
    main()
