"""Debian's Chromium driven by Playwright, for the tests that need a real browser."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


def require_chromium() -> str:
    """The browser's path; skip without it on a laptop, fail without it in CI."""
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(
            "Chromium is required in CI: `make test` installs Debian's chromium."
        )
    pytest.skip("Debian's chromium is not installed (make test installs it).")
