"""Render once per change, not once per connection.

When fifty tabs show the same document, a change to its title should render the
title block once and send the same bytes fifty times. ``SharedRenders`` keeps the
result of each (context or block) render under a key that says what it was made
from, for the connections that ask for it while it is fresh.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from channels.db import database_sync_to_async
from django.http import HttpResponse
from django.middleware.csrf import CsrfViewMiddleware, get_token

from reactive_blocks.streams.stream import render_blocks

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Hashable, Sequence

    from django.http import HttpRequest

    from reactive_blocks.index.core import BlockRef, DependencyIndex
    from reactive_blocks.streams.consumer import ReactiveStreamConsumer

__all__ = ["ConsumerRenderer", "SharedRenders", "csrf_token"]

# What the default get_connection_context() returns.
DEFAULT_CONNECTION_NAMES = frozenset({"user", "request", "csrf_token"})

T = TypeVar("T")


class SharedRenders:
    """Process-wide memo of renders, one per key, bounded, per event loop.

    ``render_count`` counts block renders really done; ``context_count`` the shared
    contexts built; ``reuse_count`` the times a connection got a result made for
    another one.
    """

    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self.render_count = 0
        self.context_count = 0
        self.reuse_count = 0
        # Futures belong to one event loop; a loop that is gone takes its entries.
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, OrderedDict[Hashable, asyncio.Future[Any]]
        ] = weakref.WeakKeyDictionary()

    async def get(self, key: Hashable, produce: Callable[[], Awaitable[T]]) -> T:
        """The result for ``key``: awaited if another connection is making it."""
        loop = asyncio.get_running_loop()
        entries = self._by_loop.setdefault(loop, OrderedDict())
        while (future := entries.get(key)) is not None:
            entries.move_to_end(key)
            try:
                result: T = await asyncio.shield(future)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # this connection is going away
                continue  # the connection making it went away: make it here
            self.reuse_count += 1
            return result
        future = loop.create_future()
        entries[key] = future
        while len(entries) > self.limit:
            entries.popitem(last=False)
        try:
            result = await produce()
        except asyncio.CancelledError:
            entries.pop(key, None)
            future.cancel()
            raise
        except Exception as exc:
            # Nobody may reuse a failure: the next change tries afresh.
            entries.pop(key, None)
            future.set_exception(exc)
            future.exception()  # retrieved, so a failure nobody awaited stays quiet
            raise
        future.set_result(result)
        return result

    def counts(self) -> dict[str, int]:
        return {
            "renders": self.render_count,
            "contexts": self.context_count,
            "reused": self.reuse_count,
        }


class ConsumerRenderer:
    """Shared blocks rendered once per change per process; personal ones per connection."""

    def __init__(
        self,
        consumer: ReactiveStreamConsumer,
        shared: SharedRenders,
        index: DependencyIndex,
        connection_names: frozenset[str] | None = None,
    ) -> None:
        self.consumer = consumer
        self.shared = shared
        self.index = index
        # The names get_connection_context() adds, if known (else learnt once).
        self._names = connection_names

    async def render(
        self,
        blocks: Sequence[BlockRef],
        changed_paths: frozenset[str],
        revision: int,
        *,
        epoch: str = "",
        resync: bool = False,
    ) -> dict[BlockRef, str]:
        consumer = self.consumer
        index = self.index
        # Everything a shared render may depend on: the page, the scope, the URL's
        # arguments, and the change (a revision means nothing without its epoch).
        # Connections differing in any of it never share.
        key = (
            type(consumer),
            consumer.get_template_name(),
            consumer.scope_name,
            repr(sorted(consumer.kwargs.items())),
            epoch,
            revision,
            changed_paths,
        )
        # A resync follows lost events: what was rendered for this revision before
        # may be older than the data, so it renders afresh.
        share = _unshared if resync else self.shared.get

        async def shared_context() -> Mapping[str, Any]:
            self.shared.context_count += 1
            context = await consumer._call(consumer.get_context, changed_paths)
            return _mapping(context, "get_context()")

        context = await share(("context", *key), shared_context)
        personal: Mapping[str, Any] | None = None
        if self._names is None:
            # Learn once which names this connection's context adds: blocks that
            # read them are rendered per connection.
            personal = await self._connection_context(changed_paths)
            self._names = frozenset(personal)
        roots = consumer.connection_roots | self._names
        own = [ref for ref in blocks if _reads_connection(index, ref, roots)]
        rendered: dict[BlockRef, str] = {}
        for ref in blocks:
            if ref in own:
                continue

            async def render_shared(ref: BlockRef = ref) -> str | None:
                self.shared.render_count += 1
                html = await _render([ref], context, consumer.scope_name)
                return html.get(ref)

            html = await share(("block", ref, *key), render_shared)
            if html is not None:
                rendered[ref] = html
        if own:
            # Only a batch with a personal block pays for this connection's context.
            if personal is None:
                personal = await self._connection_context(changed_paths)
            self.shared.render_count += len(own)
            rendered.update(
                await _render(own, {**context, **personal}, consumer.scope_name)
            )
        return rendered

    async def _connection_context(
        self, changed_paths: frozenset[str]
    ) -> Mapping[str, Any]:
        consumer = self.consumer
        context = await consumer._call(consumer.get_connection_context, changed_paths)
        return _mapping(context, "get_connection_context()")


def _reads_connection(
    index: DependencyIndex, ref: BlockRef, roots: frozenset[str]
) -> bool:
    """Whether a block depends on who is watching (it is then rendered per viewer)."""
    if index.reads_everything(ref) or index.is_personal(ref):
        return True
    reads = index.block_dependencies(ref.template_name, ref.block_name)
    return any(path.split(".", 1)[0] in roots for path in reads)


async def _unshared(key: Hashable, produce: Callable[[], Awaitable[T]]) -> T:
    return await produce()


async def _render(
    blocks: list[BlockRef], context: Mapping[str, Any], scope: str
) -> dict[BlockRef, str]:
    result: dict[BlockRef, str] = await database_sync_to_async(render_blocks)(
        blocks, context, scope
    )
    return result


def csrf_token(request: HttpRequest) -> str:
    # The browser's CSRF cookie, masked as {% csrf_token %} expects; the stream
    # cannot set a cookie, so it reuses the one the page was served with.
    CsrfViewMiddleware(lambda r: HttpResponse()).process_request(request)
    return str(get_token(request))


def _mapping(value: Any, hook: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{hook} must return a mapping, got {type(value).__name__}.")
    return value
