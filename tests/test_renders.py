from __future__ import annotations

import asyncio

import pytest

from reactive_blocks.streams.renders import SharedRenders


async def test_concurrent_requests_for_one_key_share_one_render():
    renders = SharedRenders()
    calls = 0
    gate = asyncio.Event()

    async def produce():
        nonlocal calls
        calls += 1
        await gate.wait()
        return "<p>x</p>"

    waiting = [asyncio.ensure_future(renders.get("k", produce)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiting) == ["<p>x</p>"] * 5
    assert calls == 1
    assert renders.reuse_count == 4


async def test_failures_are_not_reused():
    renders = SharedRenders()

    async def fail():
        raise RuntimeError("boom")

    async def succeed():
        return 1

    with pytest.raises(RuntimeError, match="boom"):
        await renders.get("k", fail)
    assert await renders.get("k", succeed) == 1


async def test_a_cancelled_producer_lets_a_waiter_produce():
    renders = SharedRenders()
    gate = asyncio.Event()

    async def slow():
        await gate.wait()
        return "slow"

    async def fast():
        return "fast"

    producer = asyncio.ensure_future(renders.get("k", slow))
    await asyncio.sleep(0)
    waiter = asyncio.ensure_future(renders.get("k", fast))
    await asyncio.sleep(0)
    producer.cancel()
    assert await waiter == "fast"


async def test_oldest_entries_are_dropped_past_the_limit():
    renders = SharedRenders(limit=2)
    produced = []

    async def make(value):
        produced.append(value)
        return value

    for key in ("a", "b", "c", "a"):
        await renders.get(key, lambda key=key: make(key))
    assert produced == ["a", "b", "c", "a"]
