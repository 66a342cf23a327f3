"""The memory one scope, one subscription and one connection's renders cost.

Run with ``python bench/budget.py``. It measures with ``tracemalloc`` in one
process on the in-process bus (what a process holds does not depend on the
backend: Redis keeps the revisions there). An idle stream's whole cost in a
daphne process, sockets included, is measured by ``bench/e2e.py --only idle``.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

import django  # noqa: E402
from django.conf import settings  # noqa: E402

settings.configure(INSTALLED_APPS=[], USE_TZ=True)
django.setup()

from reactive_blocks import ChangeEvent, ConnectionInfo, ReactiveBus  # noqa: E402
from reactive_blocks.index import BlockRef  # noqa: E402
from reactive_blocks.streams.viewer import Viewer  # noqa: E402

COUNT = 20_000


def measured(build):  # type: ignore[no-untyped-def]
    """Bytes allocated and still held by what ``build()`` returns."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = build()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return after - before


def scopes_emitted_to(bus: ReactiveBus) -> ReactiveBus:
    for number in range(COUNT):
        bus.emit_sync(ChangeEvent(f"doc-{number}", {"doc"}))
    return bus


def main() -> None:
    bounded = ReactiveBus(remembered_scopes=1000)
    remembered = measured(lambda: scopes_emitted_to(ReactiveBus()))
    forgotten = measured(lambda: scopes_emitted_to(bounded))
    bus = ReactiveBus()
    subscriptions = measured(
        lambda: [
            bus.subscribe(f"doc-{n}", ConnectionInfo(f"tab-{n:08d}", str(n)))
            for n in range(COUNT)
        ]
    )
    refs = [BlockRef("page.html", f"block{n}") for n in range(5)]
    html = dict.fromkeys(refs, "<p>" + "x" * 300 + "</p>")

    def viewers() -> list[Viewer]:
        made = [Viewer(f"tab-{n:08d}", None) for n in range(COUNT)]
        for viewer in made:
            viewer.choose(refs, html)  # one shared render, remembered by all
        return made

    shown = measured(viewers)
    print("Memory per item, from tracemalloc (bytes):")
    print(f"  scope remembered by the bus (revision)     {remembered / COUNT:8.0f}")
    print(
        f"  scope beyond remembered_scopes=1000        "
        f"{(forgotten - 1000 * remembered / COUNT) / COUNT:8.0f}"
    )
    print(f"  subscription with a connection (presence)  {subscriptions / COUNT:8.0f}")
    print(f"  connection's record of 5 blocks it shows   {shown / COUNT:8.0f}")
    print("  render kept after its batch was sent              0 (no render cache)")


if __name__ == "__main__":
    main()
