"""The Redis bus's outbox: changes handed over by emitters, published in order.

Emitters (request threads, signal handlers, workers) only append here, so they
never wait for Redis. The link's thread publishes the entries in batches, one
round trip each; while Redis is away they wait, and beyond ``size`` the oldest are
dropped. Whatever was dropped makes the pages it concerned resync, in every
process, once Redis is back. Control messages (closing a user's streams) wait in
a queue of their own and are never dropped for events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

from reactive_blocks.bus.retry import REDIS_ERRORS, Backoff
from reactive_blocks.bus.scripts import CONTROL, NEW_EPOCH, PUBLISH
from reactive_blocks.bus.wire import MAX_MESSAGE_BYTES, control_payload, event_payload
from reactive_blocks.metrics import get_metrics

if TYPE_CHECKING:
    from reactive_blocks.bus.link import RedisLink

__all__ = ["Entry", "Outbox"]

logger = logging.getLogger(__name__)

BATCH = 128  # entries per round trip
MAX_LOST_SCOPES = 10_000  # beyond this, a loss makes every page resync
MAX_CONTROLS = 100_000  # far beyond what closing users' streams produces
MAX_KEPT = 1_000  # controls Redis keeps for processes that were disconnected
REVISION_TTL_SECONDS = 7 * 86_400  # a scope's revision outlives any page's token

# ("event", ChangeEvent) | ("resync", scope) | ("control", JSON payload)
Entry = tuple[str, Any]


class Outbox:
    """Bounded queues of entries for Redis and the task that publishes them."""

    def __init__(self, link: RedisLink, size: int) -> None:
        self.link = link
        self.size = size
        self._entries: deque[Entry] = deque()
        self._controls: deque[Entry] = deque()
        self._lock = threading.Lock()
        self._lost_scopes: set[str] = set()  # scopes whose events were dropped
        self._lost_everything = False
        self._poked = False
        self._in_flight = 0  # entries taken for publishing, not yet published
        self._wake: asyncio.Event | None = None  # made on the link's loop
        self._drained: asyncio.Event | None = None
        self.dropped = 0
        self.published = 0
        self.attempts = 0  # round trips tried, failed or not

    @property
    def queued(self) -> int:
        """Entries waiting for Redis, including a batch on its way."""
        return len(self._entries) + len(self._controls) + self._in_flight

    def send(self, entry: Entry) -> None:
        """Queue ``entry``; never blocks. When full, the oldest event is dropped."""
        kind, value = entry
        if kind == "event" and len(event_payload(value)) > MAX_MESSAGE_BYTES // 2:
            # Too large for a receiver to accept: its pages resync instead.
            logger.error(
                "An event of scope %r is too large to publish; its pages resync.",
                value.scope,
            )
            entry = ("resync", value.scope)
        with self._lock:
            if kind == "control":
                if len(self._controls) >= MAX_CONTROLS:
                    self._drop(self._controls.popleft())
                self._controls.append(entry)
            else:
                if len(self._entries) >= self.size:
                    self._drop(self._entries.popleft())
                self._entries.append(entry)
            poke, self._poked = not self._poked, True
        if poke:  # one wake-up per batch, not one per entry
            loop = self.link.start()
            if loop is not None:
                with contextlib.suppress(RuntimeError):  # stopping
                    loop.call_soon_threadsafe(self._poke)

    def forget(self) -> None:
        """Drop everything queued (a forked child: the parent publishes it)."""
        with self._lock:
            self._entries.clear()
            self._controls.clear()
            self._poked = False

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _drop(self, entry: Entry) -> None:
        self.dropped += 1
        get_metrics().messages_dropped.labels(reason="outbox_full").inc()
        kind, value = entry
        scope = value.scope if kind == "event" else value if kind == "resync" else None
        if scope is not None and len(self._lost_scopes) < MAX_LOST_SCOPES:
            self._lost_scopes.add(scope)
        else:
            self._lost_everything = True  # a lost control, or too many scopes

    async def flush(self) -> None:
        """Wait until everything queued is published, or Redis is known away."""
        assert self._drained is not None
        while self.queued and not self.link.down:
            self._drained.clear()
            self._poke()
            await self._drained.wait()

    async def drain(self) -> None:
        """Publish entries as they come (the link runs this on its loop)."""
        self._wake, self._drained = asyncio.Event(), asyncio.Event()
        if self.queued:
            self._wake.set()
        backoff = Backoff()
        while True:
            self._drained.set()
            await self._wake.wait()
            self._wake.clear()
            while batch := self._take():
                self.attempts += 1
                try:
                    published = await self._publish(batch)
                except REDIS_ERRORS as exc:
                    self._put_back(batch)
                    self.link.failed(exc)
                    self._drained.set()  # a flush waiting for it gives up
                    await asyncio.sleep(backoff.next())
                    continue
                if published < len(batch):  # Redis refused one: retry from it
                    self._put_back(batch[published:])
                    await asyncio.sleep(backoff.next())
                    continue
                self._in_flight = 0
                backoff.reset()
                self.link.succeeded()
                if self._lost_scopes or self._lost_everything:
                    await self._announce_losses()

    def _take(self) -> list[Entry]:
        with self._lock:
            # Controls first: access that ended must end before more is shown.
            source = self._controls if self._controls else self._entries
            batch = [source.popleft() for _ in range(min(BATCH, len(source)))]
            self._poked = bool(batch)
            self._in_flight = len(batch)
        return batch

    def _put_back(self, batch: list[Entry]) -> None:
        with self._lock:
            self._in_flight = 0
            for entry in reversed(batch):
                queue = self._controls if entry[0] == "control" else self._entries
                if queue is self._entries and len(queue) >= self.size:
                    self._drop(entry)  # the oldest of all: the one to lose
                else:
                    queue.appendleft(entry)

    async def _announce_losses(self) -> None:
        """Changes were dropped while Redis was away: every page that may have
        missed one must resync, in every process."""
        with self._lock:
            scopes, self._lost_scopes = self._lost_scopes, set()
            everything, self._lost_everything = self._lost_everything, False
        logger.warning(
            "Changes to %s were dropped while Redis was away; their pages resync.",
            "every scope" if everything else f"{len(scopes)} scope(s)",
        )
        self.link.fanout.lag()
        if everything:
            # No revision can describe what was lost: a new epoch makes every page
            # resync, including those reconnecting right now.
            keys = self.link.keys
            with contextlib.suppress(*REDIS_ERRORS):
                await self.link.run(
                    NEW_EPOCH, [keys.epoch, keys.server], secrets.token_hex(4)
                )
            self.send(("control", control_payload("resync", self.link.process)))
        for scope in scopes:
            self.send(("resync", scope))

    async def _publish(self, batch: list[Entry]) -> int:
        """Publish ``batch`` in one round trip; return how many were published
        before the first that Redis refused (all of them, normally)."""
        client = self.link.client
        assert client is not None
        keys = self.link.keys
        async with client.pipeline(transaction=False) as pipe:
            for kind, value in batch:
                if kind == "control":
                    pipe.evalsha(
                        CONTROL.sha,
                        1,
                        keys.controls,
                        value,
                        keys.control,
                        str(MAX_KEPT),
                    )
                else:
                    script_keys, args = self._arguments(kind, value)
                    pipe.evalsha(PUBLISH.sha, len(script_keys), *script_keys, *args)
            results = await pipe.execute(raise_on_error=False)
        for number, result in enumerate(results):
            if isinstance(result, NoScriptError):
                # Redis restarted and forgot the scripts: load them; the rest goes
                # again in order.
                await client.script_load(PUBLISH.source)
                await client.script_load(CONTROL.source)
                self.published += number
                return number
            if isinstance(result, Exception):
                logger.error("Redis refused a publication: %s", result)
                self.published += number
                return number
            if isinstance(result, list):
                self.link.listener.saw_position(_text(result[0]), int(result[1]))
        self.published += len(batch)
        return len(batch)

    def _arguments(self, kind: str, value: Any) -> tuple[list[str], list[Any]]:
        keys = self.link.keys
        scope = value.scope if kind == "event" else value
        return [keys.sequence, keys.epoch, keys.server, keys.revision(scope)], [
            secrets.token_hex(4),
            REVISION_TTL_SECONDS,
            keys.channel(scope),
            kind,
            event_payload(value, time.time()) if kind == "event" else "null",
        ]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
