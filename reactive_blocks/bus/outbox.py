"""The Redis bus's outbox: changes handed over by emitters, published in order.

Emitters (request threads, signal handlers, workers) only append here, so they
never wait for Redis. The link's thread publishes the entries in batches, one
round trip each; while Redis is away they wait, and beyond ``size`` the oldest are
dropped. Whatever was dropped makes the pages it concerned resync, in every
process, once Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

from reactive_blocks.bus.retry import REDIS_ERRORS, Backoff
from reactive_blocks.bus.scripts import PUBLISH
from reactive_blocks.bus.wire import control_payload, event_payload

if TYPE_CHECKING:
    from reactive_blocks.bus.link import RedisLink

__all__ = ["Entry", "Outbox"]

logger = logging.getLogger(__name__)

BATCH = 128  # entries per round trip
MAX_LOST_SCOPES = 10_000  # beyond this, a loss makes every page resync
REVISION_TTL_SECONDS = 7 * 86_400  # a scope's revision outlives any page's token

# ("event", ChangeEvent) | ("resync", scope) | ("control", JSON payload)
Entry = tuple[str, Any]


class Outbox:
    """A bounded queue of entries for Redis and the task that publishes them."""

    def __init__(self, link: RedisLink, size: int) -> None:
        self.link = link
        self.size = size
        self._entries: deque[Entry] = deque()
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
        return len(self._entries) + self._in_flight

    def send(self, entry: Entry) -> None:
        """Queue ``entry``; never blocks. When full, the oldest entry is dropped."""
        with self._lock:
            if len(self._entries) >= self.size:
                self._drop(self._entries.popleft())
            self._entries.append(entry)
            poke, self._poked = not self._poked, True
        if poke:  # one wake-up per batch, not one per entry
            loop = self.link.loop()
            with contextlib.suppress(RuntimeError):  # stopping
                loop.call_soon_threadsafe(self._poke)

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _drop(self, entry: Entry) -> None:
        self.dropped += 1
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
        if self._entries:
            self._wake.set()
        backoff = Backoff()
        while True:
            self._drained.set()
            await self._wake.wait()
            self._wake.clear()
            while True:
                with self._lock:
                    batch = [
                        self._entries.popleft()
                        for _ in range(min(BATCH, len(self._entries)))
                    ]
                    self._poked = bool(batch)
                    self._in_flight = len(batch)
                if not batch:
                    break
                self.attempts += 1
                try:
                    await self._publish(batch)
                except REDIS_ERRORS as exc:
                    self._put_back(batch)
                    self.link.failed(exc)
                    self._drained.set()  # a flush waiting for it gives up
                    await asyncio.sleep(backoff.next())
                    continue
                self._in_flight = 0
                backoff.reset()
                self.link.succeeded()
                if self._lost_scopes or self._lost_everything:
                    self._announce_losses()

    def _put_back(self, batch: list[Entry]) -> None:
        with self._lock:
            self._in_flight = 0
            for entry in reversed(batch):
                if len(self._entries) >= self.size:
                    self._drop(entry)  # the oldest of all: the one to lose
                else:
                    self._entries.appendleft(entry)

    def _announce_losses(self) -> None:
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
            self.send(("control", control_payload("resync")))
        for scope in scopes:
            self.send(("resync", scope))

    async def _publish(self, batch: list[Entry]) -> None:
        client = self.link.client
        assert client is not None
        keys = self.link.keys
        async with client.pipeline(transaction=False) as pipe:
            for kind, value in batch:
                if kind == "control":
                    pipe.publish(keys.control, value)
                else:
                    script_keys, args = self._arguments(kind, value)
                    pipe.evalsha(PUBLISH.sha, len(script_keys), *script_keys, *args)
            results = await pipe.execute(raise_on_error=False)
        for number, result in enumerate(results):
            if isinstance(result, NoScriptError):
                # Redis restarted and forgot the script: load it, then publish the
                # rest again in order (a control sent twice does no harm).
                self.published += number
                await client.script_load(PUBLISH.source)
                await self._publish(batch[number:])
                return
            if isinstance(result, Exception):
                raise result
            if isinstance(result, list):
                self.link.listener.saw_position(_text(result[0]), int(result[1]))
        self.published += len(batch)

    def _arguments(self, kind: str, value: Any) -> tuple[list[str], list[Any]]:
        keys = self.link.keys
        scope = value.scope if kind == "event" else value
        return [keys.sequence, keys.epoch, keys.revision(scope)], [
            secrets.token_hex(4),
            self.link.listener.max_sequence,
            REVISION_TTL_SECONDS,
            keys.channel(scope),
            kind,
            event_payload(value) if kind == "event" else "null",
        ]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
