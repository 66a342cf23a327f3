"""Handing freed memory back: once per burst of requests, at most once per interval."""

from __future__ import annotations

import sys

import pytest

from reactive_blocks.streams.trim import Trim, malloc_trim
from tests.waiting import eventually

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="malloc_trim is glibc's"
)


def test_glibc_provides_malloc_trim():
    assert malloc_trim() is not None


async def test_many_requests_make_one_trim_then_the_interval_holds_the_next():
    trim = Trim(delay=0.0, interval=3600.0)
    for _ in range(100):
        trim.soon()
    await eventually(lambda: trim.count == 1)
    trim.soon()  # within the interval: waits for it
    assert trim._pending
    assert trim.count == 1
