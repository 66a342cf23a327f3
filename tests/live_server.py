"""Start a real daphne process on a free loopback port for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tests.processes import stop

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 30.0


@contextmanager
def daphne(
    application: str, settings_module: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Run ``application`` under daphne; yield its base URL; stop it by PID.

    The listening socket is bound here and handed over as a file descriptor, so
    there is no window in which another process could take the port.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    process_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "PYTHONPATH": str(ROOT),
        **(env or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "--fd", str(fd), "-v", "0", application],
        cwd=ROOT,
        env=process_env,
        pass_fds=[fd],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    listener.close()
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(base_url, process)
        yield base_url
    finally:
        stop(process)
        if process.stdout is not None:
            process.stdout.close()


def _wait_until_serving(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise RuntimeError(f"daphne exited with {process.returncode}:\n{output}")
        try:
            with urllib.request.urlopen(base_url + "/", timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers, which is all this waits for
        except OSError:
            time.sleep(0.05)  # polling a condition with a deadline, not waiting blindly
    raise RuntimeError(f"daphne did not answer on {base_url} within {STARTUP_TIMEOUT}s")
