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
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Hashable

__all__ = ["SharedRenders"]

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
