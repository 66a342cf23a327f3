"""reactive_stream() in process: filtering, merging, early cutoff, resync, errors."""

from __future__ import annotations

import asyncio
import contextlib
import gc

import pytest

from reactive_blocks import ChangeEvent, ConnectionInfo, DependencyIndex, ReactiveBus
from reactive_blocks.bus import CloseReason
from reactive_blocks.streams.stream import Fragment, reactive_stream
from tests.waiting import eventually

PAGE = "stream/page.html"
TIMEOUT = 5


class Fragile:
    def __init__(self, fail: bool) -> None:
        self.fail = fail

    @property
    def value(self) -> str:
        if self.fail:
            raise ValueError("fragile block exploded")
        return "fine"


class Data:
    """What the "database" holds; the builder reads it like a view would."""

    def __init__(self) -> None:
        self.title = "Title"
        self.content = "Body"
        self.fragile = Fragile(False)
        self.builds: list[frozenset[str]] = []
        self.fail_next = False

    def build(self, changed_paths: frozenset[str]) -> dict[str, object]:
        self.builds.append(changed_paths)
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("database unavailable")
        return {
            "doc": {
                "title": self.title,
                "content": self.content,
                "fragile": self.fragile,
            }
        }


@pytest.fixture
def index() -> DependencyIndex:
    index = DependencyIndex()
    index.register_from_sse_swaps(PAGE)
    index.register_block("other.html", "title", {"doc.title"})
    return index


@pytest.fixture
def data() -> Data:
    return Data()


def page_stream(bus: ReactiveBus, index: DependencyIndex, data: Data, **kwargs):
    """A stream of PAGE's blocks built from ``data``."""
    return reactive_stream(
        bus,
        scope="doc-1",
        index=index,
        context_builder=data.build,
        template_name=PAGE,
        **kwargs,
    )


def emit(bus: ReactiveBus, *paths: str, **kwargs) -> None:
    bus.emit_sync(ChangeEvent("doc-1", frozenset(paths), **kwargs))


async def take(stream, count: int) -> list[Fragment]:
    return [await asyncio.wait_for(anext(stream), TIMEOUT) for _ in range(count)]


async def nothing_more(stream, bus: ReactiveBus) -> bool:
    """True if the stream yields nothing before a marker change arrives."""
    emit(bus, "doc.title")  # the marker: its fragment must come next
    (fragment,) = await take(stream, 1)
    return fragment.block_name == "title"


async def test_a_change_becomes_a_fragment_of_the_page(index, data):
    bus = ReactiveBus()
    stream = page_stream(bus, index, data)
    data.content = "line one\nline two é"
    emit(bus, "doc.content")
    (fragment,) = await take(stream, 1)
    assert fragment == Fragment(
        "content", PAGE, "doc-body", "line one<br>line two é", 1
    )
    assert data.builds == [frozenset({"doc.content"})]
    await stream.aclose()


async def test_without_template_name_every_template_is_rendered(index, data):
    bus = ReactiveBus()
    stream = reactive_stream(
        bus, scope="doc-1", index=index, context_builder=data.build
    )
    index.register_block("stream/page.html", "title", {"doc.title"})
    emit(bus, "doc.title")
    fragments = await take(stream, 1)
    assert [f.template_name for f in fragments] == [PAGE]
    await stream.aclose()


async def test_own_changes_are_not_echoed_but_other_tabs_are(index, data):
    bus = ReactiveBus()
    mine = page_stream(bus, index, data, origin="tab-1")
    other_tab = page_stream(bus, index, data, origin="tab-2")
    data.content = "typed in tab 1"
    emit(bus, "doc.content", origin="tab-1")
    (fragment,) = await take(other_tab, 1)
    assert fragment.html == "typed in tab 1"
    data.title = "New"
    assert await nothing_more(mine, bus)
    await mine.aclose()
    await other_tab.aclose()


async def test_audience_reaches_only_the_listed_user(index, data):
    bus = ReactiveBus()
    alice = page_stream(bus, index, data, connection=ConnectionInfo("t1", "alice"))
    bob = page_stream(bus, index, data, connection=ConnectionInfo("t2", "bob"))
    data.content = "for alice"
    emit(bus, "doc.content", audience={"alice"})
    (fragment,) = await take(alice, 1)
    assert fragment.html == "for alice"
    data.title = "Shared"
    assert await nothing_more(bob, bus)
    await alice.aclose()
    await bob.aclose()


async def test_a_burst_is_merged_into_one_render_per_block(index, data):
    bus = ReactiveBus()
    stream = page_stream(bus, index, data)
    for n in range(5):
        data.title = f"T{n}"
        emit(bus, "doc.title")
    data.content = "C"
    emit(bus, "doc.content")
    fragments = await take(stream, 2)
    assert [(f.block_name, f.html, f.revision) for f in fragments] == [
        ("title", "T4", 6),
        ("content", "C", 6),
    ]
    assert data.builds == [frozenset({"doc.title", "doc.content"})]
    await stream.aclose()


async def test_early_cutoff_skips_unchanged_html(index, data):
    bus = ReactiveBus()
    stream = page_stream(bus, index, data)
    emit(bus, "doc.content")
    (first,) = await take(stream, 1)
    emit(bus, "doc.content")  # same data: same HTML, nothing to send
    data.title = "changed"
    emit(bus, "doc.title")
    (second,) = await take(stream, 1)
    assert (first.block_name, second.block_name) == ("content", "title")
    await stream.aclose()


async def test_overflow_resyncs_every_block_of_the_page(index, data):
    bus = ReactiveBus(maxsize=1)
    stream = page_stream(bus, index, data)
    data.title, data.content = "T", "C"
    emit(bus, "doc.title")
    emit(bus, "doc.content")  # drops the first: the subscriber lagged
    fragments = await take(stream, 3)
    assert {f.block_name: f.html for f in fragments} == {
        "title": "T",
        "content": "C",
        "fragile": "fine",
    }
    assert data.builds == [frozenset({"doc.title", "doc.content", "doc.fragile.value"})]
    await stream.aclose()


async def test_cursor_behind_the_scope_resyncs_at_once(index, data):
    bus = ReactiveBus()
    emit(bus, "doc.title")  # revision 1: the page was rendered before it
    stream = page_stream(bus, index, data, cursor=0)
    fragments = await take(stream, 3)
    assert [f.revision for f in fragments] == [1, 1, 1]
    await stream.aclose()


async def test_cursor_up_to_date_does_not_resync(index, data):
    bus = ReactiveBus()
    emit(bus, "doc.title")
    stream = page_stream(bus, index, data, cursor=bus.sequence)
    data.title = "after"
    emit(bus, "doc.title")
    (fragment,) = await take(stream, 1)
    assert (fragment.block_name, fragment.revision) == ("title", 2)
    await stream.aclose()


async def test_cursor_ahead_of_the_bus_resyncs(index, data):
    bus = ReactiveBus()  # e.g. the server restarted and the client remembers more
    stream = page_stream(bus, index, data, cursor=57)
    assert len(await take(stream, 3)) == 3
    await stream.aclose()


async def test_raising_context_builder_skips_the_change_not_the_stream(
    index, data, caplog
):
    bus = ReactiveBus()
    stream = page_stream(bus, index, data)
    data.fail_next = True
    emit(bus, "doc.content")
    data.title = "later"
    pending = asyncio.ensure_future(take(stream, 1))
    await eventually(lambda: bool(data.builds))  # the failing build has happened
    emit(bus, "doc.title")
    (fragment,) = await pending
    assert (fragment.block_name, fragment.html) == ("title", "later")
    assert "The context for scope 'doc-1' could not be built" in caplog.text
    await stream.aclose()


async def test_raising_block_is_skipped_and_the_others_sent(index, data, caplog):
    bus = ReactiveBus()
    stream = page_stream(bus, index, data)
    data.fragile = Fragile(True)
    data.title = "still sent"
    emit(bus, "doc.title", "doc.fragile")
    (fragment,) = await take(stream, 1)
    assert (fragment.block_name, fragment.html) == ("title", "still sent")
    assert (
        "Block 'fragile' of 'stream/page.html' failed to render for scope 'doc-1'"
        in caplog.text
    )
    data.fragile = Fragile(False)
    emit(bus, "doc.fragile")
    (fragment,) = await take(stream, 1)
    assert (fragment.block_name, fragment.html) == ("fragile", "fine")
    await stream.aclose()


async def test_zero_argument_and_async_builders(index, data):
    bus = ReactiveBus()

    async def async_builder(paths):
        return data.build(paths)

    first = reactive_stream(
        bus,
        scope="doc-1",
        index=index,
        template_name=PAGE,
        context_builder=lambda: data.build(frozenset()),
    )
    second = reactive_stream(
        bus,
        scope="doc-1",
        index=index,
        template_name=PAGE,
        context_builder=async_builder,
    )
    data.title = "both"
    emit(bus, "doc.title")
    assert (await take(first, 1))[0].html == "both"
    assert (await take(second, 1))[0].html == "both"
    await first.aclose()
    await second.aclose()


async def test_on_disconnect_runs_once_and_presence_clears(index, data):
    bus = ReactiveBus()
    calls = []
    connection = ConnectionInfo("tab-1", "7")
    stream = reactive_stream(
        bus,
        scope="doc-1",
        index=index,
        context_builder=data.build,
        connection=connection,
        on_disconnect=lambda scope, conn: calls.append((scope, conn)),
    )
    assert bus.presence("doc-1") == (connection,)
    await stream.aclose()
    await stream.aclose()
    assert calls == [("doc-1", connection)]
    assert bus.presence("doc-1") == ()


async def test_cancelled_stream_cleans_up_once(index, data):
    bus = ReactiveBus()
    calls = []

    async def record(scope, conn):
        calls.append(scope)

    stream = reactive_stream(
        bus,
        scope="doc-1",
        index=index,
        context_builder=data.build,
        connection=ConnectionInfo("tab-1"),
        on_disconnect=record,
    )
    task = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls == ["doc-1"]
    assert bus.subscriber_count == 0
    await stream.aclose()
    assert calls == ["doc-1"]


async def test_closed_scope_ends_the_stream_with_its_reason(index, data):
    bus = ReactiveBus()
    stream = reactive_stream(
        bus,
        scope="doc-1",
        index=index,
        context_builder=data.build,
        connection=ConnectionInfo("tab-1", "7"),
    )
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    bus.close_user("7")
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, TIMEOUT)
    assert stream.close_reason is CloseReason.USER_CLOSED


def test_arguments_are_validated(index, data):
    bus = ReactiveBus()
    with pytest.raises(TypeError, match="bus must be a ReactiveBus, got dict"):
        reactive_stream({}, scope="s", index=index, context_builder=data.build)
    with pytest.raises(TypeError, match="index must be a DependencyIndex"):
        reactive_stream(bus, scope="s", index={}, context_builder=data.build)
    with pytest.raises(ValueError, match="scope must be a non-empty string"):
        reactive_stream(bus, scope="", index=index, context_builder=data.build)
    with pytest.raises(TypeError, match="needs a context_builder"):
        reactive_stream(bus, scope="s", index=index)
    with pytest.raises(TypeError, match="context_builder must be callable"):
        reactive_stream(bus, scope="s", index=index, context_builder={"doc": 1})
    with pytest.raises(TypeError, match="cursor must be an int revision or None"):
        reactive_stream(
            bus, scope="s", index=index, context_builder=data.build, cursor="5"
        )
    assert bus.subscriber_count == 0


async def test_own_change_reopens_early_cutoff_for_the_authors_tab(index, data):
    """The author's tab shows its own edit; a later revert by someone else must
    reach it even though the HTML equals what the stream last sent."""
    bus = ReactiveBus()
    author = page_stream(bus, index, data, origin="tab-author")
    data.title = "A"
    emit(bus, "doc.title")
    assert (await take(author, 1))[0].html == "A"
    data.title = "B"
    emit(bus, "doc.title", origin="tab-author")  # skipped: the tab shows B itself
    data.title = "A"
    emit(bus, "doc.title", origin="tab-other")
    (fragment,) = await take(author, 1)
    assert (fragment.block_name, fragment.html) == ("title", "A")
    await author.aclose()


async def test_after_a_failed_context_the_next_change_resyncs(index, data):
    bus = ReactiveBus()
    stream = page_stream(bus, index, data)
    data.fail_next = True
    data.content = "lost with the failure"
    emit(bus, "doc.content")
    pending = asyncio.ensure_future(take(stream, 3))
    await eventually(lambda: bool(data.builds))
    emit(bus, "doc.title")
    fragments = await pending
    assert {f.block_name: f.html for f in fragments}[
        "content"
    ] == "lost with the failure"
    await stream.aclose()


async def test_only_the_last_fragment_of_a_batch_is_marked(index, data):
    bus = ReactiveBus()
    stream = page_stream(bus, index, data)
    emit(bus, "doc.title", "doc.content")
    fragments = await take(stream, 2)
    assert [f.last for f in fragments] == [False, True]
    await stream.aclose()


async def test_forced_resync_sends_every_block(index, data):
    bus = ReactiveBus()
    stream = page_stream(bus, index, data, resync=True)
    assert {f.block_name for f in await take(stream, 3)} == {
        "title",
        "content",
        "fragile",
    }
    await stream.aclose()


async def test_a_stream_cancelled_before_its_first_iteration_ends_once(index):
    bus = ReactiveBus()
    made: list[object] = []
    disconnected = asyncio.Event()
    calls: list[str] = []

    def on_disconnect(scope, connection):
        calls.append(scope)
        disconnected.set()

    async def page() -> None:
        made.append(
            reactive_stream(
                bus,
                scope="doc-1",
                index=index,
                context_builder=Data().build,
                connection=ConnectionInfo("tab-00000001"),
                on_disconnect=on_disconnect,
            )
        )
        await asyncio.Event().wait()  # cancelled before iterating

    task = asyncio.create_task(page())
    await eventually(lambda: made)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert bus.presence("doc-1") == ()  # at once
    await asyncio.wait_for(disconnected.wait(), TIMEOUT)
    await made[0].aclose()
    assert calls == ["doc-1"]  # exactly once


class Ends:
    """A stream's on_disconnect, sync or async: how often it ran, and when."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.done = asyncio.Event()

    def sync(self, scope, connection) -> None:
        self.calls.append(scope)
        self.done.set()

    async def coroutine(self, scope, connection) -> None:
        self.sync(scope, connection)

    def stream(self, bus, index, kind: str = "sync"):
        return reactive_stream(
            bus,
            scope="doc-1",
            index=index,
            context_builder=Data().build,
            connection=ConnectionInfo("tab-00000001"),
            on_disconnect=self.sync if kind == "sync" else self.coroutine,
        )


@pytest.mark.parametrize("on_disconnect_kind", ["sync", "async"])
async def test_a_stream_dropped_without_ever_being_iterated_ends_once(
    index, on_disconnect_kind
):
    """No task iterates it, none is cancelled: the last reference goes. Without
    the garbage collector (disabled here), presence drops and on_disconnect
    runs, once."""
    bus, ends = ReactiveBus(), Ends()
    gc.disable()
    try:
        stream = ends.stream(bus, index, on_disconnect_kind)
        assert len(bus.presence("doc-1")) == 1
        del stream
        assert bus.presence("doc-1") == ()  # at once
        await asyncio.wait_for(ends.done.wait(), 1.0)
    finally:
        gc.enable()
    gc.collect()  # collecting what is left calls it no second time
    assert ends.calls == ["doc-1"]


@pytest.mark.parametrize("turns", range(8))
async def test_cancelling_the_iterating_task_at_any_moment_ends_the_stream_once(
    index, turns
):
    """The task that iterates is cancelled after ``turns`` turns of the loop:
    before it ran, before its first event, between events. Presence drops and
    on_disconnect runs once, without the garbage collector."""
    bus, ends = ReactiveBus(), Ends()
    gc.disable()
    try:
        stream = ends.stream(bus, index)

        async def iterate(fragments) -> None:
            async for _ in fragments:
                pass

        task = asyncio.create_task(iterate(stream))
        for _ in range(turns):
            bus.emit_sync(ChangeEvent("doc-1", {"doc.title"}))
            await asyncio.sleep(0)  # a turn of the loop: the moment to cancel at
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        del stream, task
        await asyncio.wait_for(ends.done.wait(), 1.0)
        assert bus.presence("doc-1") == ()
    finally:
        gc.enable()
    assert ends.calls == ["doc-1"]
