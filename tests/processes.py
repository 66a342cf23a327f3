"""Helpers for tests that run real programs: find them, give them a port, stop them."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

import pytest


def require(program: str) -> str:
    """The program's path; skip the test without it (fail under CI, which has it)."""
    path = shutil.which(program)
    if path is None:
        message = f"{program} is not installed (make test installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a process this test started (by its PID), killing it if it lingers."""
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
