"""The Redis bus's connection: one event-loop thread per process.

Request threads never talk to Redis themselves. They hand changes to the outbox
(``outbox.py``), and ask for presence and positions through this thread with a
short deadline, getting a fallback answer while Redis is away. The thread also
runs the channel listener (``listener.py``) and keeps this process's presence
entries fresh (``roster.py``). It starts on first use and stops with the bus,
publishing what is queued first.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, TypeVar

from redis.exceptions import NoScriptError

from reactive_blocks.bus.listener import Listener
from reactive_blocks.bus.outbox import Outbox
from reactive_blocks.bus.retry import REDIS_ERRORS, RedisUnavailable
from reactive_blocks.bus.roster import Roster
from reactive_blocks.bus.scripts import POSITION, Keys, Script
from reactive_blocks.bus.status import process_name

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from redis.asyncio import Redis

    from reactive_blocks.bus.connector import Connector
    from reactive_blocks.bus.fanout import Fanout

__all__ = ["RedisLink"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
FLUSH_SECONDS = 5.0  # how long stopping (or exiting) waits for the outbox
STARTUP_SECONDS = 5.0
PROBE_SECONDS = 1.0  # after a failure, callers get their fallback this long


class RedisLink:
    """Everything that talks to Redis, on the bus's own thread."""

    def __init__(
        self,
        connector: Connector,
        keys: Keys,
        fanout: Fanout,
        *,
        outbox_size: int,
        presence_refresh: float,
        presence_grace: float,
        on_presence_swept: Callable[[str], None],
    ) -> None:
        self.connector = connector
        self.keys = keys
        self.fanout = fanout
        self.process = _process_name()
        self.client: Redis | None = None  # for commands; made on the loop
        self.outbox = Outbox(self, outbox_size)
        self.roster = Roster(self, presence_refresh, presence_grace, on_presence_swept)
        self.listener = Listener(self)
        self.connects = 0  # subscriptions opened (1 + reconnections)
        # This process's report for reactive_status, sent every presence refresh.
        self.report: Callable[[], dict[str, Any]] | None = None
        self.report_every = presence_refresh
        # Health: after a failure, callers get their fallback without waiting.
        self._down_until = 0.0
        self._down = False
        self._probe = threading.Lock()
        self._start_lock = threading.Lock()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._tasks: list[asyncio.Task[None]] = []

    # The thread -------------------------------------------------------------------

    def start(self) -> asyncio.AbstractEventLoop | None:
        """The link's running loop, started if need be; None while it stops.

        Only the bus's public entry points (emitting, subscribing, asking for
        presence or a position) start the link. Hooks that run while it stops, or
        from inside it, use ``post()``, which never does.
        """
        loop = self._loop
        if loop is not None and self._pid == os.getpid():
            return loop
        with self._start_lock:
            if self._pid and self._pid != os.getpid():
                self._forget_parent()
            if self._stopping:
                return None
            if self._loop is None:
                ready = threading.Event()
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=self._run,
                    args=(loop, ready),
                    name="reactive-blocks-redis",
                    daemon=True,
                )
                thread.start()
                if not ready.wait(STARTUP_SECONDS):
                    logger.error("The Redis bus's thread did not start.")
                    return None
                self._loop, self._thread, self._pid = loop, thread, os.getpid()
                atexit.register(self.stop)
            return self._loop

    def post(self, callback: Callable[[], object]) -> bool:
        """Run ``callback`` on the link's loop if it is running; never starts it."""
        loop = self._loop
        if loop is None or self._pid != os.getpid():
            return False
        try:
            loop.call_soon_threadsafe(callback)
        except RuntimeError:  # closed under us
            return False
        return True

    def _forget_parent(self) -> None:
        """In a forked child: the parent's thread, queue and connections are not
        ours (the parent publishes its own changes)."""
        self._loop = self._thread = None
        self._stopping = False
        self.process = _process_name()
        self.outbox.forget()
        self.roster.forget()
        self.listener.forget()

    def _run(self, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        self.client = self.connector.client()
        self._tasks = [
            loop.create_task(self.outbox.drain()),
            loop.create_task(self.roster.keep()),
            loop.create_task(self.listener.run()),
            loop.create_task(self._report()),
        ]
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            # A library may swallow a cancellation (redis-py does, mid-command):
            # cancel again while tasks remain, a bounded number of times.
            for _ in range(3):
                pending = [task for task in self._tasks if not task.done()]
                if not pending:
                    break
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.wait(pending, timeout=0.5))
            with contextlib.suppress(*REDIS_ERRORS):
                loop.run_until_complete(self.client.aclose())
                loop.run_until_complete(self.connector.aclose())
            loop.close()

    def stop(self) -> None:
        """Publish what is queued (for a few seconds at most), leave presence, stop."""
        atexit.unregister(self.stop)
        with self._start_lock:
            loop, thread = self._loop, self._thread
            if loop is None or thread is None or self._pid != os.getpid():
                return
            self._stopping = True
        try:
            if not loop.is_closed() and thread.is_alive():
                future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
                try:
                    future.result(FLUSH_SECONDS + 2)
                except Exception:
                    logger.warning(
                        "The Redis bus did not shut down cleanly.", exc_info=True
                    )
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(loop.stop)
                thread.join(FLUSH_SECONDS)
        finally:
            with self._start_lock:
                self._loop = self._thread = None
                self._stopping = False

    async def _shutdown(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FLUSH_SECONDS):
                await self.outbox.flush()
        if self.outbox.queued:
            logger.warning(
                "Stopping with %d change(s) not published to Redis.",
                self.outbox.queued,
            )
        # No renewal may follow the leaves: stop renewing first.
        renewing = self._tasks[1]
        renewing.cancel()
        await asyncio.wait({renewing}, timeout=1)
        await self.roster.leave_all()
        with contextlib.suppress(*REDIS_ERRORS):
            if self.client is not None:
                await self.client.delete(self.keys.status(process_name()))

    async def _report(self) -> None:
        """This process's report, kept in Redis three refreshes (then: gone)."""
        key = self.keys.status(process_name())
        while True:
            if self.report is not None and self.client is not None:
                try:
                    text = json.dumps(self.report())
                    await self.client.set(key, text, px=int(self.report_every * 3000))
                except REDIS_ERRORS as exc:
                    self.failed(exc)
            await asyncio.sleep(self.report_every)

    async def statuses(self) -> list[dict[str, Any]]:
        """Every process's latest report."""
        assert self.client is not None  # made before any call reaches the loop
        keys = [k async for k in self.client.scan_iter(self.keys.status("*"), 500)]
        found = []
        for raw in await self.client.mget(keys) if keys else []:
            if raw is None:
                continue  # expired between the scan and the read
            with contextlib.suppress(ValueError):
                report = json.loads(raw)
                if isinstance(report, dict):
                    found.append(report)
        return found

    # Calls from other threads ----------------------------------------------------

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = 1.0) -> T:
        """Run ``make()`` on the link's loop and wait for it, or raise
        ``RedisUnavailable`` at once while Redis is known to be away."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("A blocking Redis bus call was made on its own thread.")
        loop, probing = self._admit()
        future = asyncio.run_coroutine_threadsafe(self._guarded(make), loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            self.failed(TimeoutError(f"no answer within {timeout}s"))
            raise RedisUnavailable from None
        finally:
            if probing:
                self._probe.release()

    async def acall(self, make: Callable[[], Awaitable[T]], within: float = 1.0) -> T:
        """``call()`` for coroutines on other loops: waits without blocking them."""
        loop, probing = self._admit()
        future = asyncio.run_coroutine_threadsafe(self._guarded(make), loop)
        try:
            async with asyncio.timeout(within):
                return await asyncio.wrap_future(future)
        except TimeoutError:
            future.cancel()
            self.failed(TimeoutError(f"no answer within {within}s"))
            raise RedisUnavailable from None
        finally:
            if probing:
                self._probe.release()

    def _admit(self) -> tuple[asyncio.AbstractEventLoop, bool]:
        """The loop to ask Redis on, and whether this caller is the one probing.

        While Redis is known to be away, callers get their fallback at once, and
        once the probe interval is over only one of them at a time tries again,
        so an outage never makes every request wait for a timeout.
        """
        loop = self.start()
        if loop is None or time.monotonic() < self._down_until:
            raise RedisUnavailable
        if not self._down:
            return loop, False
        if not self._probe.acquire(blocking=False):
            raise RedisUnavailable
        return loop, True

    async def _guarded(self, make: Callable[[], Awaitable[T]]) -> T:
        try:
            result = await make()
        except REDIS_ERRORS as exc:
            self.failed(exc)
            raise RedisUnavailable from exc
        self.succeeded()
        return result

    def call_later(
        self, delay: float, callback: Callable[[], None]
    ) -> Callable[[], None]:
        """Schedule ``callback`` on the link's loop; returns a cancel function.

        Nothing is scheduled while the link is not running.
        """
        handles: list[asyncio.TimerHandle] = []

        def schedule() -> None:
            handles.append(asyncio.get_running_loop().call_later(delay, callback))

        def cancel_all() -> None:
            for handle in handles:
                handle.cancel()

        def cancel() -> None:
            self.post(cancel_all)

        self.post(schedule)
        return cancel

    # Health ------------------------------------------------------------------------

    def failed(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + PROBE_SECONDS
        if not self._down:
            self._down = True
            logger.warning(
                "Redis is unreachable (%s); changes wait in the outbox (%d queued) "
                "and streams keep their heartbeats until it is back.",
                exc,
                self.outbox.queued,
            )

    def succeeded(self) -> None:
        self._down_until = 0.0
        if self._down:
            self._down = False
            logger.warning("Redis is reachable again.")

    @property
    def down(self) -> bool:
        return self._down

    # Commands ----------------------------------------------------------------------

    async def run(self, script: Script, keys: list[str], *args: Any) -> Any:
        """Run a script by its hash, loading it the first time Redis lacks it."""
        assert self.client is not None
        # Plain callables: redis-py 5 types these as "awaitable or not".
        evalsha: Callable[..., Any] = self.client.evalsha
        script_load: Callable[[str], Awaitable[object]] = self.client.script_load
        try:
            return await evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            await script_load(script.source)
            return await evalsha(script.sha, len(keys), *keys, *args)

    async def position(self, scope: str | None = None) -> tuple[str, int, int]:
        """(epoch, sequence, revision of ``scope``) as Redis has them now."""
        keys = [self.keys.sequence, self.keys.epoch, self.keys.server]
        if scope is not None:
            keys.append(self.keys.revision(scope))
        reply = await self.run(POSITION, keys, secrets.token_hex(4))
        epoch = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
        sequence, revision = int(reply[1]), int(reply[2])
        self.listener.saw_position(epoch, sequence)
        return epoch, sequence, revision


def _process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
