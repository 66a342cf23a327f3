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


class FakeConsumer:
    """What ConsumerRenderer uses of a consumer: hooks that count their calls."""

    template_name = "stream/page.html"
    scope_name = "doc-1"
    kwargs = {"pk": 1}  # noqa: RUF012
    connection_roots = frozenset({"user"})

    def __init__(self) -> None:
        self.contexts = 0

    def get_template_name(self):
        return self.template_name

    async def _call(self, hook, *args):
        return hook(*args)

    def get_context(self, changed_paths):
        self.contexts += 1
        return {"doc": {"title": f"v{self.contexts}"}}

    def get_connection_context(self, changed_paths):
        return {}


def consumer_renderer():
    from reactive_blocks.index import DependencyIndex
    from reactive_blocks.streams.renders import ConsumerRenderer

    index = DependencyIndex()
    index.register_block("stream/page.html", "title", {"doc.title"})
    consumer = FakeConsumer()
    return consumer, ConsumerRenderer(consumer, SharedRenders(), index)


@pytest.mark.django_db
async def test_a_change_is_rendered_once_but_a_resync_always_afresh():
    from reactive_blocks.index import BlockRef

    consumer, renderer = consumer_renderer()
    title = BlockRef("stream/page.html", "title")
    paths = frozenset({"doc.title"})
    first = await renderer.render([title], paths, 7, epoch="e1")
    again = await renderer.render([title], paths, 7, epoch="e1")
    assert first == again
    assert consumer.contexts == 1  # shared by every connection of that change
    resync = await renderer.render([title], paths, 7, epoch="e1", resync=True)
    assert consumer.contexts == 2
    assert resync[title] != first[title]  # fresh data, not the render of revision 7
    await renderer.render([title], paths, 7, epoch="e2")
    assert consumer.contexts == 3  # revision 7 of another history is another change


@pytest.mark.django_db
async def test_a_connection_context_is_built_only_for_batches_with_a_personal_block():
    from reactive_blocks.index import BlockRef

    consumer, renderer = consumer_renderer()
    # A block that reads the viewer (as the index would record it).
    renderer.index.register_block("stream/page.html", "content", {"user.username"})
    personal_calls = []
    consumer.get_connection_context = lambda paths: (
        personal_calls.append(paths) or {"user": {"username": "ann"}}
    )
    title = BlockRef("stream/page.html", "title")
    greeting = BlockRef("stream/page.html", "content")
    # The first batch learns which names the hook adds (one call)...
    await renderer.render([title], frozenset({"doc.title"}), 1)
    assert len(personal_calls) == 1
    # ...after which a batch of shared blocks never calls it...
    await renderer.render([title], frozenset({"doc.title"}), 2)
    assert len(personal_calls) == 1
    # ...and one with a block that reads those names does, once.
    rendered = await renderer.render([title, greeting], frozenset({"doc"}), 3)
    assert len(personal_calls) == 2
    assert set(rendered) == {title, greeting}
