"""Start a real daphne process on a free loopback port for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tests.processes import stop

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import IO

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 30.0


@contextmanager
def daphne(
    application: str, settings_module: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Run ``application`` under daphne; yield its base URL; stop it by PID."""
    with served(application, settings_module, env) as (url, _):
        yield url


@contextmanager
def served(
    application: str,
    settings_module: str,
    env: dict[str, str] | None = None,
    port: int = 0,
    python: str = sys.executable,
    cwd: Path = ROOT,
    log_path: Path | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run ``application`` under daphne; yield its base URL and process.

    The listening socket is bound here and handed over as a file descriptor, so
    there is no window in which another process could take the port. ``port``
    serves again where a stopped server was (0: a free port). ``python`` and
    ``cwd``: another interpreter (an installed wheel's), away from the checkout.
    ``log_path``: keep the server's output there (else in a temporary file).
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    process_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "PYTHONPATH": str(ROOT),
        **(env or {}),
    }
    # Its output goes to a file: a pipe nobody reads would block a chatty server.
    opened = tempfile.TemporaryFile() if log_path is None else log_path.open("w+b")  # noqa: SIM115
    with opened as log:
        process = subprocess.Popen(
            [python, "-m", "daphne", "--fd", str(fd), "-v", "0", application],
            cwd=cwd,
            env=process_env,
            pass_fds=[fd],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        listener.close()
        base_url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_serving(base_url, process, log)
            yield base_url, process
        finally:
            if process.poll() is None:
                stop(process)


def _wait_until_serving(
    base_url: str, process: subprocess.Popen[bytes], log: IO[bytes]
) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace")
            raise RuntimeError(f"daphne exited with {process.returncode}:\n{output}")
        try:
            with urllib.request.urlopen(base_url + "/", timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers, which is all this waits for
        except OSError:
            time.sleep(0.05)  # polling a condition with a deadline, not waiting blindly
    raise RuntimeError(f"daphne did not answer on {base_url} within {STARTUP_TIMEOUT}s")
