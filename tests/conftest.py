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


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One redis-server for the session; tests keep apart with their own prefix."""
    from tests.redis_server import RedisServer

    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_prefix(request) -> str:
    """A key prefix of this test's own, so tests sharing a Redis never meet."""
    import secrets

    return f"t-{request.node.name[:40]}-{secrets.token_hex(3)}"
