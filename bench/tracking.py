"""What tracking adds to a save: a tracked model against the same model untracked.

Run with ``python bench/tracking.py``. It migrates a SQLite database in a
temporary folder (a file, as in production: every save commits), then times
``save()`` of an already loaded instance, changing its title each time, for the
tracked ``Item`` and the untracked ``PlainItem`` of the benchmark site, in
alternating rounds. Prints the medians and their ratio (target: at most 1.3), for
SQLite as Django sets it up, and tuned (WAL, synchronous=NORMAL: commits about
seven times cheaper, so what tracking adds weighs more). It runs itself once per
setup, since the setup is read when Django starts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--saves", type=int, default=500)
    parser.add_argument("--sqlite", choices=["defaults", "tuned"])
    args = parser.parse_args()
    if args.sqlite is None:
        for setup in ("defaults", "tuned"):
            subprocess.run(
                [sys.executable, __file__, "--sqlite", setup, "--runs", str(args.runs),
                 "--saves", str(args.saves)],
                check=True,
            )  # fmt: skip
        return
    with tempfile.TemporaryDirectory() as directory:
        os.environ["BENCH_DATABASE"] = str(Path(directory) / "bench.sqlite3")
        os.environ["BENCH_SQLITE"] = args.sqlite
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.site.settings"
        import django

        django.setup()
        from django.core.management import call_command

        from bench.site.models import Item, PlainItem

        call_command("migrate", run_syncdb=True, verbosity=0)
        times: dict[str, list[float]] = {"tracked": [], "untracked": []}
        for _ in range(args.runs):
            for name, model in (("tracked", Item), ("untracked", PlainItem)):
                instance = model.objects.create(title="start")
                instance = model.objects.get(pk=instance.pk)  # loaded, as a view does
                start = time.perf_counter()
                for number in range(args.saves):
                    instance.title = f"title {number}"
                    instance.save()
                times[name].append((time.perf_counter() - start) / args.saves)
        tracked = statistics.median(times["tracked"]) * 1e6
        untracked = statistics.median(times["untracked"]) * 1e6
        print(
            f"SQLite {args.sqlite}: save() of a loaded instance, medians of "
            f"{args.runs} x {args.saves}: untracked {untracked:.1f} µs, tracked "
            f"{tracked:.1f} µs, ratio {tracked / untracked:.2f} (target <= 1.3)"
        )


if __name__ == "__main__":
    main()
