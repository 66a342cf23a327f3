"""Programs the tests take from Debian: skipped without them on a laptop, a failure
without them in CI (``make test`` installs them)."""

from __future__ import annotations

import os
import shutil

import pytest


def require_program(name: str, package: str, *places: str) -> str:
    """The path of program ``name`` (Debian's ``package``), looked for at ``places``
    first, then on PATH."""
    path = next((p for p in places if os.path.exists(p)), None) or shutil.which(name)
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(
            f"{name} is required in CI: `make test` installs Debian's {package}."
        )
    pytest.skip(f"Debian's {package} is not installed (make test installs it).")
