"""The connections of one live page (URL and view) in this process, served together.

The page follows several bus scopes (``follows.py``); a change to any of them
re-runs the page's view once per browser (its cookies: the tabs of one browser
share a session and a CSRF cookie) that the change concerns, renders the page's
``sse-swap`` blocks from what the view gave, and sends each tab the blocks that
differ from what it was sent. Bursts that come while views run are merged into
the next round. Nothing computed for one browser is sent to another.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from reactive_blocks.bus.state import CloseReason
from reactive_blocks.pages.rerun import STREAM_ONLY_HEADERS, Outcome, rerun
from reactive_blocks.rows.render import Keyed
from reactive_blocks.streams.engine import Delivery
from reactive_blocks.streams.stream import render_with_rows
from reactive_blocks.streams.viewer import (
    adopt_rows,
    behind,
    named_rows,
    rows_plans,
)

if TYPE_CHECKING:
    from reactive_blocks.bus.state import Member
    from reactive_blocks.bus.subscription import Batch, SharedSubscription
    from reactive_blocks.events import ChangeEvent
    from reactive_blocks.index import BlockRef
    from reactive_blocks.pages.consumer import PageStreamConsumer
    from reactive_blocks.rows.render import RowsPlan
    from reactive_blocks.streams.engine import Client, Frames
    from reactive_blocks.streams.hubs import Hubs

__all__ = ["PageHub", "browser_of"]

logger = logging.getLogger(__name__)

# What may differ between the tabs of one browser, and a re-run does not use.
PER_TAB_HEADERS = STREAM_ONLY_HEADERS | {b"connection", b"pragma", b"referer"}
RUNS_PER_TRIP = 16  # view runs made in one trip to Django's thread


def browser_of(stream_scope: Any) -> str:
    """Which browser a stream comes from: everything a re-run gives the view of
    the request (its cookies, authorization and other headers) and the client's
    address, hashed. The tabs of one browser share a re-run of the view; two
    browsers that could be told apart never do, even without a session."""
    digest = hashlib.sha256()
    for name, value in sorted(stream_scope.get("headers", [])):
        if name not in PER_TAB_HEADERS:
            digest.update(name + b"\0" + value + b"\0")
    client = stream_scope.get("client") or ("", 0)
    digest.update(str(client[0]).encode())
    return digest.hexdigest()


class PageHub(Delivery):
    """Every connection of one page in this process."""

    def __init__(
        self, hubs: Hubs, key: tuple[object, ...], consumer: PageStreamConsumer
    ) -> None:
        super().__init__(hubs, key, consumer.page.path)
        self.bus, self.index = hubs.bus, hubs.index
        self.page, self.match = consumer.page, consumer.match
        self.template = self.page.template
        self.subscriptions: dict[str, SharedSubscription] = {
            scope: self.bus.subscribe_shared(scope) for scope in self.page.follows
        }
        self._batches: list[Batch | ClosedScope] = []
        self._closed: list[Member] = []
        self._wake = asyncio.Event()
        self._fresh: list[Client] = []  # joined: are they behind?
        # Each browser's keyed blocks as last sent (rows/render.py).
        self._bases: dict[str, dict[BlockRef, Keyed]] = {}
        self._named: dict[BlockRef, frozenset[str] | None] = {}
        self._readers = [
            asyncio.ensure_future(self._read(sub))
            for sub in self.subscriptions.values()
        ]
        self.task = asyncio.ensure_future(self._run())

    # Clients -------------------------------------------------------------------------

    def join(self, client: Client) -> None:
        connection = client.consumer.connection
        members = [(sub, sub.join(connection)) for sub in self.subscriptions.values()]
        self._admit(client, members)
        self._fresh.append(client)
        self._wake.set()

    def _release(self, client: Client, held: Any) -> None:
        for sub, member in held:
            sub.leave(member)
        browser = _browser(client)
        if all(_browser(other) != browser for other in self.clients):
            self._bases.pop(browser, None)

    def _emptied(self) -> None:
        self._close()

    def _close(self) -> None:
        self.hubs.forget(self)
        for reader in self._readers:
            reader.cancel()
        for sub in self.subscriptions.values():
            sub.close()
        self._wake.set()

    # The loop ------------------------------------------------------------------------

    async def _read(self, sub: SharedSubscription) -> None:
        while (batch := await sub.next_batch()) is not None:
            self._closed.extend(sub.take_closed())
            if sub.take_recheck():
                batch = dataclasses.replace(batch, lagged=True)
            self._batches.append(batch)
            self._wake.set()
        if sub.close_reason is not None and self.clients:
            # The bus ended the scope (bus.close()): its pages end with it.
            self._batches.append(ClosedScope(sub.close_reason))
            self._wake.set()

    async def _run(self) -> None:
        try:
            while self.clients:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._wait())
                # One save reaches several followed scopes at once: let every
                # reader hand its batch over, so they make one round.
                await asyncio.sleep(0)
                self._wake.clear()
                await self._round()
                await self._tick()
        except Exception:
            logger.exception(
                "The streams of %s failed; they reconnect.", self.page.path
            )
        finally:
            self.closed = True  # a stream opening now gets a new hub
            self.hubs.forget(self)
            for client in list(self.clients):
                await self.end(client, client.consumer.reconnect_event)
            self._close()

    async def _round(self) -> None:
        batches, self._batches = self._batches, []
        closed, self._closed = self._closed, []
        for client, members in list(self.clients.items()):
            ended = [m for _, m in members if m in closed]
            if ended:
                user_closed = ended[0].close_reason is CloseReason.USER_CLOSED
                consumer = client.consumer
                event = (
                    consumer.close_event if user_closed else consumer.reconnect_event
                )
                await self.end(client, event)
        for batch in batches:
            if isinstance(batch, ClosedScope):
                for client in list(self.clients):
                    consumer = client.consumer
                    user_closed = batch.reason is CloseReason.USER_CLOSED
                    event = (
                        consumer.close_event
                        if user_closed
                        else consumer.reconnect_event
                    )
                    await self.end(client, event)
                return
        fresh, self._fresh = self._fresh, []
        for client in fresh:
            if client in self.clients and self._behind(client):
                client.viewer.resync = True
            elif client in self.clients:
                bases = self._bases.get(_browser(client), {})
                adopt_rows(client.viewer, bases, client.cursor, self._revision())
        changes = [b for b in batches if not isinstance(b, ClosedScope)]
        events: list[ChangeEvent] = [e for b in changes for e in b.events]
        lagged = any(b.lagged for b in changes)
        self._published(min((b.since for b in changes if b.since), default=None))
        revision = max((b.revision for b in changes), default=self._revision())
        # Every block of the page is rendered again: each is named every row
        # (after lost events, none: keyed blocks go whole).
        self._named = {} if lagged else named_rows(events, self._blocks)
        browsers: dict[str, list[Client]] = {}
        for client in self.clients:
            need = client.viewer.need(events, lagged, self._blocks)
            if need is not None:
                browsers.setdefault(_browser(client), []).append(client)
        if browsers:
            await self._serve(list(browsers.values()), revision)

    def _revision(self) -> int:
        return max((s.latest_revision for s in self.subscriptions.values()), default=0)

    def _behind(self, client: Client) -> bool:
        return behind(
            client.cursor,
            client.epoch,
            current_epoch=self.bus.epoch,
            revision=self._revision(),
            latest=None if self.bus.crosses_processes else self.bus.sequence,
        )

    def _blocks(self, paths: frozenset[str] | None = None) -> list[BlockRef]:
        return self.index.blocks(self.template)

    async def _serve(self, browsers: list[list[Client]], revision: int) -> None:
        """Re-run the view once per browser, a few browsers per trip to Django's
        thread, and send each browser's tabs what changed for them."""
        frames = self._frames(revision, browsers[0][0].consumer.reload_event)
        for start in range(0, len(browsers), RUNS_PER_TRIP):
            chunk = browsers[start : start + RUNS_PER_TRIP]
            plans = [self._plans(clients) for clients in chunk]
            # In a thread of their own: Django's one thread for sync code (also
            # the one opening streams and checking access) is not held by them.
            results = await sync_to_async(
                self._rerun_all, thread_sensitive=False, executor=self.hubs.reruns
            )([clients[0] for clients in chunk], plans)
            for clients, (outcome, rendered) in zip(chunk, results, strict=True):
                await self._deliver(clients, outcome, rendered, frames)
            await self._tick()  # heartbeats and lifetimes go on during long rounds
        self._sent(frames)

    def _plans(self, clients: list[Client]) -> dict[BlockRef, RowsPlan]:
        """How one browser's keyed blocks are rendered (rows, or whole)."""
        bases = self._bases.get(_browser(clients[0]), {})
        viewers = [client.viewer for client in clients]
        return rows_plans(self.index, self._blocks(), viewers, bases, self._named)

    async def _deliver(
        self,
        clients: list[Client],
        outcome: Outcome,
        rendered: dict[BlockRef, str | Keyed],
        frames: Frames,
    ) -> None:
        counts = self.hubs.counts
        counts.context_count += 1  # one view run
        if outcome.kind == "end":
            logger.info("A stream of %s ends: %s.", self.page.path, outcome.reason)
            for client in clients:
                await self.end(client, client.consumer.close_event)
            return
        if outcome.kind == "skip":
            for client in clients:
                client.viewer.resync = True
            return
        self.template = outcome.template
        counts.rendered(rendered, personal=True)  # the view ran for its user
        counts.reuse_count += len(clients) - 1
        blocks = self._blocks()
        for client in clients:
            if client in self.clients:
                fresh = client.viewer.choose(blocks, rendered)
                if fresh:
                    await self._send(client, frames.message(fresh))
        browser = _browser(clients[0])
        # Kept while the browser has a tab here (its last may have left meanwhile).
        kept = any(_browser(client) == browser for client in self.clients)
        bases = self._bases.setdefault(browser, {}) if kept else {}
        for ref, result in rendered.items():
            if isinstance(result, Keyed):
                bases[ref] = result
                result.release(int(frames.id))

    def _rerun_all(
        self, clients: list[Client], plans: list[dict[BlockRef, RowsPlan]]
    ) -> list[tuple[Outcome, dict[BlockRef, str | Keyed]]]:
        close_old_connections()  # as database_sync_to_async does around its call
        try:
            return [
                self._rerun(client, plan)
                for client, plan in zip(clients, plans, strict=True)
            ]
        finally:
            close_old_connections()

    def _rerun(
        self, client: Client, plans: dict[BlockRef, RowsPlan]
    ) -> tuple[Outcome, dict[BlockRef, str | Keyed]]:
        """One browser's run and blocks; whatever fails fails for it alone."""
        try:
            outcome = rerun(self.page, self.match, client.consumer.scope)
            if outcome.kind != "render":
                return outcome, {}
            blocks = self.index.blocks(outcome.template)
            path = self.page.path
            return outcome, render_with_rows(blocks, outcome.context, path, plans)
        except Exception:
            logger.exception(
                "The page %s could not be run again for its stream; this update "
                "is skipped for one browser.",
                self.page.path,
            )
            return Outcome("skip", reason="the re-run failed"), {}


def _browser(client: Client) -> str:
    return str(getattr(client.consumer, "browser", ""))


class ClosedScope:
    """Put among the batches when the bus ended a followed scope."""

    def __init__(self, reason: CloseReason | None) -> None:
        self.reason = reason
