"""`make demo-redis`: two daphne processes on two ports sharing one local Redis.

Open http://127.0.0.1:8000 in one window and http://127.0.0.1:8001 in another:
edits, comments and presence cross from one process to the other through Redis.
Ctrl-C stops the three processes this started (and nothing else).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REDIS_PORT = 6390
PORTS = (8000, 8001)


def main() -> None:
    redis = shutil.which("redis-server")
    if redis is None:
        sys.exit(
            "redis-server is missing: install it (Debian: apt-get install redis-server)."
        )
    env = {**os.environ, "DEMO_REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/0"}
    bin_dir = Path(sys.executable).parent
    processes = [
        subprocess.Popen(
            [redis, "--port", str(REDIS_PORT), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
    ]  # fmt: skip
    for port in PORTS:
        processes.append(
            subprocess.Popen(
                [bin_dir / "daphne", "-b", "127.0.0.1", "-p", str(port),
                 "demo_project.asgi:application"],
                cwd=ROOT,
                env=env,
            )
        )  # fmt: skip
    print(
        "\nServing the demo on two processes sharing Redis:\n"
        + "".join(f"  http://127.0.0.1:{port}/\n" for port in PORTS)
        + "Log in as alice / alice-demo in one and bob / bob-demo in the other "
        "(a private window). Ctrl-C stops it.",
        flush=True,
    )
    try:
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)  # watching children a person started by hand
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
