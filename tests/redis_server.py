"""A real redis-server on a free loopback port, started and stopped by the tests.

The tests that need it skip on a machine without redis-server, except under CI
(``CI=true``), where a missing server is a failure: ``make test`` installs it.
"""

from __future__ import annotations

import socket
import subprocess
import time
from typing import TYPE_CHECKING

from tests.processes import free_port, require, stop

if TYPE_CHECKING:
    from pathlib import Path

STARTUP_TIMEOUT = 10.0


class RedisServer:
    """One redis-server process; ``stop()`` and ``start()`` again on the same port."""

    def __init__(self, directory: Path, *extra: str, port: int | None = None) -> None:
        self.binary = require("redis-server")
        self.directory = directory
        self.extra = extra
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = self.directory / f"redis-{self.port}.log"
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--logfile",
                str(log),
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited:\n{log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer on {self.port}")
            time.sleep(0.02)  # polling a condition with a deadline
        return self

    def answers(self) -> bool:
        try:
            return self.command("PING") == "+PONG"
        except OSError:
            return False

    def command(self, *parts: str) -> str:
        """Send one command (inline protocol) and return the first reply line."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            payload = f"*{len(parts)}\r\n" + "".join(
                f"${len(p.encode())}\r\n{p}\r\n" for p in parts
            )
            sock.sendall(payload.encode())
            return sock.recv(65536).decode(errors="replace").split("\r\n", 1)[0]

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop(process)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
