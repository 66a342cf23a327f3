"""Stream hubs: every connection to one page of one scope, served together.

When a thousand browsers show the same document, a change should cost one render
of each affected block, one encoding of its SSE frame, and then one write per
browser, nothing more. A hub holds the connections of one (consumer, page, scope,
URL arguments) in this process on one shared bus subscription: it is woken once
per batch, builds the context once, renders each shared block once, encodes each
frame once, and hands every connection its bytes in a single send. Only what
differs per connection is done per connection: audience and own-change filtering,
early cutoff, and blocks that read the viewer. Heartbeats and stream lifetimes
are kept by the hub too, so an idle connection costs no task of its own.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async

from reactive_blocks.bus.state import CloseReason
from reactive_blocks.rendering import processed_context
from reactive_blocks.rows.render import Keyed
from reactive_blocks.streams.csrf import read_csrf_cookie
from reactive_blocks.streams.engine import Client, Delivery, Frames, RenderCounts
from reactive_blocks.streams.stream import render_blocks, render_with_rows
from reactive_blocks.streams.viewer import (
    EVERYTHING,
    adopt_rows,
    affected_on,
    behind,
    blocks_for,
    named_rows,
    needed_paths,
    rows_plans,
)

if TYPE_CHECKING:
    from reactive_blocks.bus.state import Member
    from reactive_blocks.bus.subscription import Batch
    from reactive_blocks.events import ChangeEvent
    from reactive_blocks.index import BlockRef, DependencyIndex
    from reactive_blocks.rows.render import RowsPlan
    from reactive_blocks.streams.consumer import ReactiveStreamConsumer
    from reactive_blocks.streams.hubs import Hubs

# Client, Frames and RenderCounts were defined here first.
__all__ = ["Client", "Frames", "Hub", "RenderCounts"]

logger = logging.getLogger(__name__)

SENDS_PER_TURN = 25  # sends a hub makes before the event loop gets a turn


class Hub(Delivery):
    """The connections of one page of one scope in this process."""

    def __init__(
        self,
        hubs: Hubs,
        key: tuple[object, ...],
        shared_consumer: ReactiveStreamConsumer,
        template_name: str,
    ) -> None:
        super().__init__(hubs, key, repr(shared_consumer.scope_name))
        self.bus, self.index = hubs.bus, hubs.index
        self.scope = shared_consumer.scope_name
        self.template_name = template_name
        # get_context() runs on this one, which no connection owns.
        self.shared_consumer = shared_consumer
        self.subscription = self.bus.subscribe_shared(self.scope)
        self._names: frozenset[str] | None = None  # get_connection_context() keys
        # Each keyed block's rows as last sent: the next change is sent as rows
        # to the viewers that show them.
        self._rows: dict[BlockRef, Keyed] = {}
        # Events carrying ``recheck`` already acted on while still queued.
        self._checked: list[ChangeEvent] = []
        # Whether the consumer checks access at all (the default allows everyone).
        self._permission_hook = shared_consumer.checks_access()
        # Joined since the last batch: asked again before their first fragments
        # (a list, so a batch need not look at every connection to find them).
        self._newcomers: list[Client] = []
        self.task = asyncio.ensure_future(self._run())

    # Clients -------------------------------------------------------------------------

    def join(self, client: Client) -> None:
        client.member = self.subscription.join(client.consumer.connection)
        self._admit(client, None)
        if self._permission_hook:
            self._newcomers.append(client)
        self.subscription.nudge()  # it decides at once whether the page is behind

    def _release(self, client: Client, held: Any) -> None:
        if client.member is not None:
            self.subscription.leave(client.member)

    def _emptied(self) -> None:
        super()._emptied()
        self.subscription.close()

    # The loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        subscription = self.subscription
        try:
            # Heartbeats go on while the subscription waits to start (Redis away).
            while (batch := await subscription.next_batch(self._wait())) is not None:
                for member in subscription.take_closed():
                    await self._closed(member)
                # Access first: a change that may take it away is rendered only
                # for the connections that still have it (it was committed).
                if subscription.take_recheck() or self._unchecked(batch.events):
                    await self._recheck()
                if self._checked:
                    self._forget_checked()
                if subscription.started:
                    await self._deliver(batch)
                await self._tick()
                if not self.clients:
                    return
        except Exception:
            logger.exception("The streams of %r failed; they reconnect.", self.scope)
        finally:
            self.closed = True  # a stream opening now gets a new hub
            self.hubs.forget(self)
            reason = subscription.close_reason
            event = "reconnect" if reason is not CloseReason.USER_CLOSED else "close"
            for client in list(self.clients):
                await self.end(client, self._event(client, event))
            self.hubs.forget(self)
            subscription.close()

    def _event(self, client: Client, kind: str) -> str:
        consumer = client.consumer
        return consumer.close_event if kind == "close" else consumer.reconnect_event

    async def _closed(self, member: Member) -> None:
        kind = (
            "close" if member.close_reason is CloseReason.USER_CLOSED else "reconnect"
        )
        for client in list(self.clients):
            if client.member is member:
                await self.end(client, self._event(client, kind))

    def _unchecked(self, events: Sequence[ChangeEvent]) -> list[ChangeEvent]:
        """The events carrying ``recheck`` whose check has not been done yet."""
        return [
            e
            for e in events
            if e.recheck and not any(e is done for done in self._checked)
        ]

    def _forget_checked(self) -> None:
        """Keep only the checked events still waiting in the queue."""
        queued = self.subscription.queued_rechecks()
        self._checked = [c for c in self._checked if any(c is q for q in queued)]

    async def _recheck(self) -> None:
        """``bus.recheck()``: end the connections that may no longer watch (or
        whose user changed, or whose check failed: they reconnect and ask again)."""
        for client in list(self.clients):
            verdict = await client.consumer._access()
            if verdict != "keep" and client in self.clients:
                await self.end(client, self._event(client, verdict))

    async def _expired(self, client: Client) -> str:
        """A stream whose lifetime is over is asked again whether it may go on."""
        verdict = await client.consumer._access()
        return self._event(client, "close" if verdict == "close" else "reconnect")

    # Delivery --------------------------------------------------------------------------

    async def _deliver(self, batch: Batch) -> None:
        self._published(batch.since)
        if self._newcomers:
            await self._check_newcomers()
        needs: dict[frozenset[str], list[Client]] = {}
        events = batch.events
        # The usual case, decided once for everyone: no audience, nobody's own.
        plain = not batch.lagged and all(e.audience is None for e in events)
        origins = {e.origin for e in events if e.origin is not None}
        common = needed_paths(events) if events else None
        named = named_rows(events, self._affected)
        for client in self.clients:
            viewer = client.viewer
            if not client.started:
                client.started = True
                if self._behind(client):
                    viewer.resync = True
                else:
                    latest = self.subscription.latest_revision
                    adopt_rows(viewer, self._rows, client.cursor, latest)
            if plain and not viewer.resync and viewer.origin not in origins:
                need = common
            else:
                need = viewer.need(events, batch.lagged, self._affected)
            if need is not None:
                needs.setdefault(need, []).append(client)
        for need, clients in needs.items():
            await self._serve(need, clients, batch.revision, named)

    async def _check_newcomers(self) -> None:
        """Ask ``has_permission()`` again for connections about to get their first
        fragments: a change that took their access away may have been checked
        between their own check and their joining (or before this hub began)."""
        newcomers, self._newcomers = self._newcomers, []
        for client in newcomers:
            if client not in self.clients or client.started:
                continue
            verdict = await client.consumer._access(reload=False)
            if verdict != "keep" and client in self.clients:
                await self.end(client, self._event(client, verdict))

    def _behind(self, client: Client) -> bool:
        subscription = self.subscription
        return behind(
            client.cursor,
            client.epoch,
            current_epoch=subscription.start_epoch,
            revision=subscription.latest_revision,
            latest=None if self.bus.crosses_processes else self.bus.sequence,
        )

    def _affected(self, paths: frozenset[str]) -> list[BlockRef]:
        return affected_on(self.index, paths, self.template_name)

    async def _serve(
        self,
        need: frozenset[str],
        clients: list[Client],
        revision: int,
        named: dict[BlockRef, frozenset[str] | None],
    ) -> None:
        blocks, paths = blocks_for(self.index, need, self.template_name)
        if not blocks:
            return
        if self._names is None:
            await self._learn_names(clients[0], paths)
        roots = self.shared_consumer.connection_roots | (self._names or frozenset())
        personal = [ref for ref in blocks if _reads_connection(self.index, ref, roots)]
        shared = [ref for ref in blocks if ref not in personal]
        # A resync names no rows: its keyed blocks go whole.
        plans = rows_plans(
            self.index,
            shared,
            [client.viewer for client in clients],
            self._rows,
            {} if need is EVERYTHING else named,
        )
        try:
            context, rendered = await self._build(paths, shared, plans)
        except Exception:
            logger.exception(
                "The context for scope %r could not be built; this change is skipped, "
                "its streams go on and resend every block at the next change.",
                self.scope,
            )
            for client in clients:
                client.viewer.resync = True
            return
        self.hubs.counts.reuse_count += (len(clients) - 1) * bool(shared)
        mine = (
            await self._personal(clients, personal, context, paths) if personal else {}
        )
        waiting = self._unchecked(self.subscription.queued_rechecks())
        if self.subscription.take_recheck() or waiting:
            # A change that may take access away came while these blocks were
            # rendered, and the render may already show it: check first (once:
            # its own batch does not check again).
            self._checked.extend(waiting)
            await self._recheck()
        frames = self._frames(revision, self.shared_consumer.reload_event)
        for number, client in enumerate(clients, start=1):
            if client not in self.clients:
                continue  # it left while the blocks were rendered
            own = {**rendered, **mine[client]} if personal else rendered
            fresh = client.viewer.choose(blocks, own)
            if fresh:
                await self._send(client, frames.message(fresh))
            if number % SENDS_PER_TURN == 0:
                # Let the loop run before handing out more: what went through
                # the server is written, the first browsers get their bytes
                # sooner, and the server's per-write objects die young instead
                # of piling up for the collector's slow full passes.
                await asyncio.sleep(0)
        self._sent(frames)
        self._keep_rows(rendered, revision)

    async def _build(
        self,
        paths: frozenset[str],
        blocks: list[BlockRef],
        plans: dict[BlockRef, RowsPlan],
    ) -> tuple[Mapping[str, Any], dict[BlockRef, str | Keyed]]:
        """The shared context, and the shared blocks rendered from it: in one
        trip to Django's thread when ``get_context()`` is a plain method."""
        counts, hook = self.hubs.counts, self.shared_consumer.get_context
        counts.context_count += 1
        if inspect.iscoroutinefunction(hook):
            context = _mapping(await hook(paths), "get_context()")
            rendered = await database_sync_to_async(render_with_rows)(
                blocks, context, self.scope, plans
            )
            counts.rendered(rendered, personal=False)
            return context, rendered

        def build() -> tuple[Mapping[str, Any], dict[BlockRef, str | Keyed]]:
            context = _mapping(hook(paths), "get_context()")
            return context, render_with_rows(blocks, context, self.scope, plans)

        result: tuple[Mapping[str, Any], dict[BlockRef, str | Keyed]]
        result = await database_sync_to_async(build)()
        counts.rendered(result[1], personal=False)
        return result

    def _keep_rows(
        self, rendered: Mapping[BlockRef, str | Keyed], revision: int
    ) -> None:
        """Remember the rows the viewers were sent, for the next change."""
        for ref, result in rendered.items():
            if isinstance(result, Keyed):
                self._rows[ref] = result
                result.release(revision)

    async def _learn_names(self, client: Client, paths: frozenset[str]) -> None:
        names = client.consumer._connection_names()
        if names is None:
            names = frozenset(await client.consumer._connection_context(paths))
        self._names = names

    async def _personal(
        self,
        clients: list[Client],
        blocks: list[BlockRef],
        context: Mapping[str, Any],
        paths: frozenset[str],
    ) -> dict[Client, dict[BlockRef, str]]:
        """Every client's personal blocks, in one trip to Django's thread for all
        of them. A connection whose context fails gets none; the others do."""
        hook = "get_connection_context()"
        given: dict[Client, Mapping[str, Any] | None] = {}
        if inspect.iscoroutinefunction(clients[0].consumer.get_connection_context):
            for client in clients:
                given[client] = await self._guarded(
                    client.consumer.get_connection_context(paths), hook
                )

        def render_all() -> dict[Client, dict[BlockRef, str] | None]:
            rendered: dict[Client, dict[BlockRef, str] | None] = {}
            for client in clients:
                consumer = client.consumer
                if given:
                    personal = given[client]
                else:
                    personal = self._call_guarded(
                        functools.partial(consumer.get_connection_context, paths), hook
                    )
                # Under the page's context, as a RequestContext has them.
                processed = self._call_guarded(
                    functools.partial(_processed, consumer), "a context processor"
                )
                rendered[client] = (
                    None
                    if personal is None or processed is None
                    else render_blocks(
                        blocks, {**processed, **context, **personal}, self.scope
                    )
                )
            return rendered

        result: dict[Client, dict[BlockRef, str] | None]
        result = await database_sync_to_async(render_all)()
        built = sum(1 for rendered in result.values() if rendered is not None)
        self.hubs.counts.connection_count += built
        self.hubs.counts.rendered_per_viewer(len(blocks) * built)
        return {client: rendered or {} for client, rendered in result.items()}

    async def _guarded(self, pending: Any, hook: str) -> Mapping[str, Any] | None:
        try:
            return _mapping(await pending, hook)
        except Exception:
            logger.exception("%s failed for scope %r.", hook, self.scope)
            return None

    def _call_guarded(
        self, function: Callable[[], Any], hook: str
    ) -> Mapping[str, Any] | None:
        try:
            return _mapping(function(), hook)
        except Exception:
            logger.exception("%s failed for scope %r.", hook, self.scope)
            return None


def _reads_connection(
    index: DependencyIndex, ref: BlockRef, roots: frozenset[str]
) -> bool:
    """Whether a block depends on who is watching (it is then rendered per viewer)."""
    if index.reads_everything(ref) or index.is_personal(ref):
        return True
    reads = index.block_dependencies(ref.template_name, ref.block_name)
    return any(path.split(".", 1)[0] in roots for path in reads)


def _processed(consumer: ReactiveStreamConsumer) -> dict[str, Any]:
    request = consumer.request
    read_csrf_cookie(request)  # the csrf processor's token then fits the cookie
    return processed_context(request)


def _mapping(value: Any, hook: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{hook} must return a mapping, got {type(value).__name__}.")
    return value
