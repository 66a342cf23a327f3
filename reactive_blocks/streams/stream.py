"""From change events to rendered fragments: the heart of a live page.

For each batch of events a subscriber has queued: skip the connection's own changes,
look up the affected blocks, build the context, render each block, and yield what
differs from what this connection last received. A lost event (queue overflow) or a
client that reconnects from an older revision gets every block again (a resync), so
the page converges.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from asgiref.sync import sync_to_async

from reactive_blocks.bus.memory import ReactiveBus
from reactive_blocks.bus.subscription import when_cancelled
from reactive_blocks.events import ConnectionInfo
from reactive_blocks.index.core import BlockRef, DependencyIndex
from reactive_blocks.metrics import get_metrics
from reactive_blocks.paths import require_name
from reactive_blocks.rendering import render_block
from reactive_blocks.rows.render import Keyed, RowsPlan, render_keyed
from reactive_blocks.streams.viewer import (
    EVERYTHING,
    Viewer,
    affected_on,
    behind,
    blocks_for,
)

if TYPE_CHECKING:
    from reactive_blocks.bus.subscription import CloseReason, Subscription

_R = TypeVar("_R")

__all__ = [
    "ContextRenderer",
    "Fragment",
    "ReactiveStream",
    "Renderer",
    "reactive_stream",
]

logger = logging.getLogger(__name__)

ContextBuilder = Callable[..., Mapping[str, Any] | Awaitable[Mapping[str, Any]]]
OnDisconnect = Callable[[str, ConnectionInfo | None], object]


@dataclass(frozen=True, slots=True)
class Fragment:
    """One re-rendered block, ready to be sent as one SSE event."""

    block_name: str
    template_name: str
    target: str | None  # the swapped element's id, when known
    html: str
    revision: int  # the scope revision it reflects
    # The last fragment of its batch. Only it carries the SSE event id, so a client
    # cut off halfway through a batch reconnects from the batch before and resyncs.
    last: bool = True


class Renderer(Protocol):
    """Turns blocks into HTML for one batch of changes.

    Raise to skip the whole batch (its context could not be built); leave out a
    block whose render failed. ``epoch`` and ``revision`` identify the change
    (renders may be shared between connections by them), except for a
    ``resync``: events may have been lost, so it must render from fresh data.
    """

    async def render(
        self,
        blocks: Sequence[BlockRef],
        changed_paths: frozenset[str],
        revision: int,
        *,
        epoch: str = "",
        resync: bool = False,
    ) -> dict[BlockRef, str]: ...


async def call_builder(
    builder: Callable[..., Any], changed_paths: frozenset[str]
) -> Any:
    """Call a context builder with the changed paths if it takes an argument.

    A sync builder runs in Django's sync thread (it usually queries the database).
    """
    args = (changed_paths,) if _takes_argument(builder) else ()
    if inspect.iscoroutinefunction(builder):
        return await builder(*args)
    result = await sync_to_async(builder, thread_sensitive=True)(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def _takes_argument(builder: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(builder).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
        for p in parameters
    )


def render_blocks(
    blocks: Sequence[BlockRef], context: Mapping[str, Any], scope: str
) -> dict[BlockRef, str]:
    """Render each block; a block that raises is logged and left out."""
    return _each(
        blocks,
        scope,
        lambda ref: render_block(ref.template_name, ref.block_name, dict(context)),
    )


def render_with_rows(
    blocks: Sequence[BlockRef],
    context: Mapping[str, Any],
    scope: str,
    plans: Mapping[BlockRef, RowsPlan],
) -> dict[BlockRef, str | Keyed]:
    """``render_blocks()``, but a block with a plan and a keyed loop is rendered
    a row at a time where it can be (``rows/render.py``)."""

    def render(ref: BlockRef) -> str | Keyed:
        plan = plans.get(ref)
        if plan is None:
            return render_block(ref.template_name, ref.block_name, dict(context))
        return render_keyed(ref.template_name, ref.block_name, context, plan)

    return _each(blocks, scope, render)


def _each(
    blocks: Sequence[BlockRef], scope: str, render: Callable[[BlockRef], _R]
) -> dict[BlockRef, _R]:
    rendered = {}
    for ref in blocks:
        try:
            rendered[ref] = render(ref)
        except Exception:
            logger.exception(
                "Block %r of %r failed to render for scope %r; it is skipped, the "
                "other blocks are sent.",
                ref.block_name,
                ref.template_name,
                scope,
            )
    return rendered


class ContextRenderer:
    """Renders every block from ``context_builder(changed_paths)``, per connection."""

    def __init__(self, context_builder: ContextBuilder, scope: str) -> None:
        if not callable(context_builder):
            raise TypeError(
                f"context_builder must be callable, got {type(context_builder).__name__}: "
                f"{context_builder!r}."
            )
        self.context_builder = context_builder
        self.scope = scope

    async def render(
        self,
        blocks: Sequence[BlockRef],
        changed_paths: frozenset[str],
        revision: int,
        *,
        epoch: str = "",
        resync: bool = False,
    ) -> dict[BlockRef, str]:
        context = await call_builder(self.context_builder, changed_paths)
        if not isinstance(context, Mapping):
            raise TypeError(
                f"The context builder returned {type(context).__name__}, not a mapping."
            )
        return await sync_to_async(render_blocks, thread_sensitive=True)(
            blocks, context, self.scope
        )


class ReactiveStream:
    """The fragments of one connection to one scope; see ``reactive_stream()``."""

    def __init__(
        self,
        bus: ReactiveBus,
        *,
        scope: str,
        index: DependencyIndex,
        context_builder: ContextBuilder | None = None,
        origin: str | None = None,
        connection: ConnectionInfo | None = None,
        on_disconnect: OnDisconnect | None = None,
        template_name: str | None = None,
        cursor: int | None = None,
        renderer: Renderer | None = None,
        resync: bool = False,
        epoch: str | None = None,
    ) -> None:
        if not isinstance(bus, ReactiveBus):
            raise TypeError(f"bus must be a ReactiveBus, got {type(bus).__name__}.")
        if not isinstance(index, DependencyIndex):
            raise TypeError(
                f"index must be a DependencyIndex, got {type(index).__name__}."
            )
        require_name(scope, name="scope")
        if template_name is not None:
            require_name(template_name, name="template_name")
        if on_disconnect is not None and not callable(on_disconnect):
            raise TypeError(f"on_disconnect must be callable, got {on_disconnect!r}.")
        if cursor is not None and (
            isinstance(cursor, bool) or not isinstance(cursor, int)
        ):
            raise TypeError(f"cursor must be an int revision or None, got {cursor!r}.")
        if epoch is not None and not isinstance(epoch, str):
            raise TypeError(f"epoch must be a str or None, got {epoch!r}.")
        if renderer is None:
            if context_builder is None:
                raise TypeError(
                    "reactive_stream() needs a context_builder (or a renderer)."
                )
            renderer = ContextRenderer(context_builder, scope)
        self.scope = scope
        self.index = index
        self.origin = origin
        self.connection = connection
        self.template_name = template_name
        self.renderer = renderer
        self.close_reason: CloseReason | None = None
        self._on_disconnect = on_disconnect
        self._finished = False
        self._closing: asyncio.Future[None] | None = None
        self._viewer = Viewer(
            origin, None if connection is None else connection.user_id, resync=resync
        )
        self._cursor = cursor
        self._epoch = epoch
        # Subscribe now: presence is immediate and nothing emitted from here on is
        # missed, even before the first iteration.
        self.subscription: Subscription = bus.subscribe(scope, connection)
        # Made at the first iteration: a generator of self's would hold self in
        # a cycle, which only the garbage collector could end.
        self._fragments: AsyncGenerator[Fragment, None] | None = None
        # Cancelled before its first iteration, the task that made it would
        # otherwise leave on_disconnect to the garbage collector.
        stream = weakref.ref(self)
        self._forget_owner = when_cancelled(lambda: _finish_soon(stream))
        # Dropped without ever being iterated (or closed): end it all the same.
        self._ending = _Ending()
        weakref.finalize(
            self,
            _abandoned,
            self._ending,
            self.subscription,
            on_disconnect,
            scope,
            connection,
        )

    def __aiter__(self) -> ReactiveStream:
        return self

    async def __anext__(self) -> Fragment:
        forget, self._forget_owner = self._forget_owner, _stay
        forget()
        if self._fragments is None:
            if self._finished:
                raise StopAsyncIteration
            self._fragments = self._run()
        return await self._fragments.__anext__()

    async def aclose(self) -> None:
        """End the stream: unsubscribe and run ``on_disconnect`` (once)."""
        if self._fragments is not None:
            await self._fragments.aclose()
        await self._finish()

    async def _run(self) -> AsyncGenerator[Fragment, None]:
        subscription, viewer = self.subscription, self._viewer
        try:
            if not await subscription.ready():
                return
            if viewer.resync or self._behind(subscription):
                viewer.resync = False
                get_metrics().resyncs.inc()
                async for fragment in self._render(
                    EVERYTHING, subscription.start_revision
                ):
                    yield fragment
            while (batch := await subscription.next_batch()) is not None:
                need = viewer.need(batch.events, batch.lagged, self._affected)
                if need is not None:
                    async for fragment in self._render(need, batch.revision):
                        yield fragment
        finally:
            await self._finish()

    def _behind(self, subscription: Subscription) -> bool:
        return behind(
            self._cursor,
            self._epoch,
            current_epoch=subscription.start_epoch,
            revision=subscription.start_revision,
            latest=subscription.start_sequence,
        )

    def _affected(self, paths: frozenset[str]) -> list[BlockRef]:
        return affected_on(self.index, paths, self.template_name)

    async def _render(
        self, need: frozenset[str], revision: int
    ) -> AsyncGenerator[Fragment, None]:
        resync = need is EVERYTHING
        blocks, paths = blocks_for(self.index, need, self.template_name)
        if not blocks:
            return
        try:
            rendered = await self.renderer.render(
                blocks,
                paths,
                revision,
                epoch=self.subscription.start_epoch,
                resync=resync,
            )
        except Exception:
            logger.exception(
                "The context for scope %r could not be built; this change is skipped, "
                "the stream goes on and resends every block at the next change.",
                self.scope,
            )
            self._viewer.resync = True
            return
        fresh = self._viewer.choose(blocks, rendered)
        for number, (ref, html) in enumerate(fresh, start=1):
            yield Fragment(
                ref.block_name,
                ref.template_name,
                self.index.dom_id(ref),
                html,
                revision,
                last=number == len(fresh),
            )

    async def _finish(self) -> None:
        if self._finished:
            return
        self._finished = self._ending.finished = True
        self.subscription.close()
        self.close_reason = self.subscription.close_reason
        if self._on_disconnect is None:
            return
        try:
            result = self._on_disconnect(self.scope, self.connection)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("on_disconnect for scope %r raised.", self.scope)


def _stay() -> None:
    pass


class _Ending:
    """Whether a stream has ended: shared with what ends a stream dropped unused
    (which may not reference the stream)."""

    __slots__ = ("finished",)

    def __init__(self) -> None:
        self.finished = False


_abandoned_disconnects: set[asyncio.Task[object]] = set()


def _abandoned(
    ending: _Ending,
    subscription: Subscription,
    on_disconnect: OnDisconnect | None,
    scope: str,
    connection: ConnectionInfo | None,
) -> None:
    """A stream's last reference went before it ended: unsubscribe (presence
    drops at once) and run ``on_disconnect``, once."""
    if ending.finished:
        return
    ending.finished = True
    subscription.close()
    if on_disconnect is None:
        return
    try:
        result = on_disconnect(scope, connection)
        if inspect.iscoroutine(result):
            try:
                loop = asyncio.get_running_loop()  # of the thread that dropped it
            except RuntimeError:
                result.close()
                logger.warning(
                    "A stream of scope %r was dropped outside an event loop: its "
                    "async on_disconnect could not run.",
                    scope,
                )
                return
            task = loop.create_task(result)
            _abandoned_disconnects.add(task)
            task.add_done_callback(_abandoned_disconnects.discard)
    except Exception:
        logger.exception("on_disconnect for scope %r raised.", scope)


def _finish_soon(stream: weakref.ref[ReactiveStream]) -> None:
    alive = stream()
    if alive is not None and not alive._finished:
        alive.subscription.close()  # presence drops at once
        alive._closing = asyncio.ensure_future(alive._finish())


def reactive_stream(
    bus: ReactiveBus,
    *,
    scope: str,
    index: DependencyIndex,
    context_builder: ContextBuilder | None = None,
    origin: str | None = None,
    connection: ConnectionInfo | None = None,
    on_disconnect: OnDisconnect | None = None,
    template_name: str | None = None,
    cursor: int | None = None,
    renderer: Renderer | None = None,
    resync: bool = False,
    epoch: str | None = None,
) -> ReactiveStream:
    """Stream the re-rendered blocks of ``scope`` as its data changes.

    ``context_builder(changed_paths)`` (or ``context_builder()``) returns the
    template context; ``origin`` is this connection's id, whose own changes are not
    echoed; ``template_name`` limits the blocks to one page; ``cursor`` is the
    revision the client already shows (resync if the scope moved on since) and
    ``epoch`` the bus epoch it was numbered in (another epoch: resync);
    ``resync`` sends every block at once (the client's state is unknown).
    ``on_disconnect(scope, connection)`` runs once when the stream ends.
    """
    return ReactiveStream(
        bus,
        scope=scope,
        index=index,
        context_builder=context_builder,
        origin=origin,
        connection=connection,
        on_disconnect=on_disconnect,
        template_name=template_name,
        cursor=cursor,
        renderer=renderer,
        resync=resync,
        epoch=epoch,
    )
