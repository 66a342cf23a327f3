from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from reactive_blocks.runtime import reset

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def _fresh_runtime() -> Iterator[None]:
    """Each test starts with a new bus and index."""
    reset()
    yield
    reset()
