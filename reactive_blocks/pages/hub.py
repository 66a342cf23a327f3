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
import hashlib
import heapq
import itertools
import logging
import time
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from django.conf import settings

from reactive_blocks.bus.state import CloseReason
from reactive_blocks.conf import conf
from reactive_blocks.pages.rerun import Outcome, rerun
from reactive_blocks.streams.hub import PING, Frames
from reactive_blocks.streams.sse import encode_event
from reactive_blocks.streams.stream import render_blocks

if TYPE_CHECKING:
    from reactive_blocks.bus.state import Member
    from reactive_blocks.bus.subscription import Batch, SharedSubscription
    from reactive_blocks.events import ChangeEvent
    from reactive_blocks.index import BlockRef
    from reactive_blocks.pages.consumer import PageStreamConsumer
    from reactive_blocks.streams.hub import Client
    from reactive_blocks.streams.hubs import Hubs

__all__ = ["PageHub", "browser_of"]

logger = logging.getLogger(__name__)


def browser_of(stream_scope: Any) -> str:
    """Which browser a stream comes from: its session and CSRF cookies (what a
    re-run reads of the request), hashed. The tabs of one browser share a re-run
    of the view; two browsers never do, and other cookies do not split them."""
    cookies: SimpleCookie = SimpleCookie()
    for name, value in stream_scope.get("headers", []):
        if name == b"cookie":
            with contextlib.suppress(Exception):
                cookies.load(value.decode("latin-1"))
    parts = []
    for cookie in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME):
        morsel = cookies.get(cookie)
        parts.append(morsel.value if morsel is not None else "")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


class PageHub:
    """Every connection of one page in this process."""

    def __init__(
        self, hubs: Hubs, key: tuple[object, ...], consumer: PageStreamConsumer
    ) -> None:
        self.hubs, self.key = hubs, key
        self.bus, self.index = hubs.bus, hubs.index
        self.page, self.match = consumer.page, consumer.match
        self.template = self.page.template
        self.subscriptions: dict[str, SharedSubscription] = {
            scope: self.bus.subscribe_shared(scope) for scope in self.page.follows
        }
        self.clients: dict[Client, list[tuple[SharedSubscription, Member]]] = {}
        self._batches: list[Batch] = []
        self._closed: list[Member] = []
        self._wake = asyncio.Event()
        self._fresh: list[Client] = []  # joined: are they behind?
        self._deadlines: list[tuple[float, int, Client]] = []
        self._counter = itertools.count()
        self._next_ping = time.monotonic() + conf.HEARTBEAT_SECONDS
        self._max_fragment = conf.MAX_FRAGMENT_BYTES
        self._max_buffered = conf.MAX_BUFFERED_BYTES
        self._readers = [
            asyncio.ensure_future(self._read(sub))
            for sub in self.subscriptions.values()
        ]
        self.task = asyncio.ensure_future(self._run())

    # Clients -------------------------------------------------------------------------

    def join(self, client: Client) -> None:
        client.hub = self
        connection = client.consumer.connection
        self.clients[client] = [
            (sub, sub.join(connection)) for sub in self.subscriptions.values()
        ]
        heapq.heappush(self._deadlines, (client.deadline, next(self._counter), client))
        self._fresh.append(client)
        self._wake.set()

    def leave(self, client: Client) -> None:
        members = self.clients.pop(client, None)
        if members is None:
            return
        for sub, member in members:
            sub.leave(member)
        self.hubs.released(client)
        client.on_end()
        if not self.clients:
            self._close()

    async def end(self, client: Client, event: str) -> None:
        if client not in self.clients:
            return
        self.leave(client)
        try:
            await client.send(
                {
                    "type": "http.response.body",
                    "body": encode_event("", event=event),
                    "more_body": False,
                }
            )
        except Exception:
            logger.debug("Could not end a stream of %s cleanly.", self.page.path)

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
                batch = type(batch)(batch.events, batch.revision, True)
            self._batches.append(batch)
            self._wake.set()
        if sub.close_reason is not None and self.clients:
            # The bus ended the scope (bus.close()): its pages end with it.
            self._batches.append(type_closed(sub.close_reason))
            self._wake.set()

    async def _run(self) -> None:
        try:
            while self.clients:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._wait())
                # One save reaches several followed topics at once: let every
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
            for client in list(self.clients):
                await self.end(client, client.consumer.reconnect_event)
            if self.clients:
                self._close()

    def _wait(self) -> float:
        soonest = self._next_ping
        if self._deadlines:
            soonest = min(soonest, self._deadlines[0][0])
        return max(0.0, soonest - time.monotonic())

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
        events: list[ChangeEvent] = [e for b in batches for e in b.events]
        lagged = any(b.lagged for b in batches)
        revision = max((b.revision for b in batches), default=self._revision())
        browsers: dict[str, list[Client]] = {}
        for client in self.clients:
            need = client.viewer.need(events, lagged, self._blocks)
            if need is not None:
                browser = getattr(client.consumer, "browser", "")
                browsers.setdefault(browser, []).append(client)
        for clients in browsers.values():
            await self._serve(clients, revision)

    def _revision(self) -> int:
        return max((s.latest_revision for s in self.subscriptions.values()), default=0)

    def _behind(self, client: Client) -> bool:
        """Whether a page that just connected may lack changes: it is re-run."""
        if client.epoch is not None and client.epoch != self.bus.epoch:
            return True
        if client.cursor is None:
            return False
        return self._revision() > client.cursor

    def _blocks(self, paths: frozenset[str] | None = None) -> list[BlockRef]:
        return self.index.blocks(self.template)

    async def _serve(self, clients: list[Client], revision: int) -> None:
        """Re-run the view for one browser and send its tabs what changed."""
        counts = self.hubs.counts
        counts.context_count += 1  # one view run
        outcome, rendered = await database_sync_to_async(self._rerun)(clients[0])
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
        counts.render_count += len(rendered)
        counts.reuse_count += len(clients) - 1
        blocks = self._blocks()
        frames = Frames(revision, self._max_fragment, clients[0].consumer.reload_event)
        for client in clients:
            if client not in self.clients:
                continue
            fresh = client.viewer.choose(blocks, rendered)
            if fresh:
                await self._send(client, frames.message(fresh))
        if frames.oversized:
            counts.oversized_count += 1
            self.hubs.trim.soon()

    def _rerun(self, client: Client) -> tuple[Outcome, dict[BlockRef, str]]:
        outcome = rerun(self.page, self.match, client.consumer.scope)
        if outcome.kind != "render":
            return outcome, {}
        blocks = self.index.blocks(outcome.template)
        return outcome, render_blocks(blocks, outcome.context, self.page.path)

    async def _tick(self) -> None:
        now = time.monotonic()
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, client = heapq.heappop(self._deadlines)
            if client in self.clients:
                await self.end(client, client.consumer.reconnect_event)
        if now >= self._next_ping:
            self._next_ping = now + conf.HEARTBEAT_SECONDS
            for client in list(self.clients):
                await self._send(client, PING)

    async def _send(self, client: Client, message: dict[str, Any]) -> None:
        pending = client.backlog.pending()
        if pending and pending + len(message["body"]) > self._max_buffered:
            logger.warning(
                "A stream of %s was closed: its client left %d bytes unread.",
                self.page.path,
                pending,
            )
            self.hubs.counts.overflow_count += 1
            self.leave(client)
            client.backlog.abort()
            self.hubs.trim.soon()
            return
        try:
            await client.send(message)
        except Exception:
            logger.exception("A stream of %s failed while sending.", self.page.path)
            await self.end(client, client.consumer.reconnect_event)


class ClosedScope:
    """Put among the batches when the bus ended a followed scope."""

    def __init__(self, reason: CloseReason | None) -> None:
        self.reason = reason


def type_closed(reason: CloseReason | None) -> Any:
    return ClosedScope(reason)
