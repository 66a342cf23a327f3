"""How the Redis bus reaches Redis: a URL or Sentinel, and redis-py's own options."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Connector"]

# What the bus sets on the redis-py client unless the options say otherwise:
# nothing may wait long on Redis.
CLIENT_DEFAULTS: dict[str, Any] = {
    "socket_connect_timeout": 2.0,
    "socket_timeout": 5.0,
    "socket_keepalive": True,
}


class Connector:
    """Makes redis-py clients for one Redis (or Sentinel-managed master)."""

    def __init__(
        self,
        url: str,
        options: dict[str, Any],
        sentinels: list[tuple[str, int]] | None = None,
        master_name: str | None = None,
        sentinel_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if (sentinels is None) != (master_name is None):
            raise ValueError(
                "sentinels and master_name go together: give both to reach a Redis "
                "Sentinel deployment, or neither to use url."
            )
        self.url = url
        self.options = {**CLIENT_DEFAULTS, **options}
        self.sentinels = sentinels
        self.master_name = master_name
        self.sentinel_kwargs = sentinel_kwargs
        self._sentinel: Sentinel | None = None
        # A misspelt option fails now, with redis-py's own message, not at the
        # first event: build a client and one (unconnected) connection.
        try:
            make_connection: Callable[[], object] = (
                self.client().connection_pool.make_connection
            )
            make_connection()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Redis options not accepted by redis-py: {exc}") from exc
        self._sentinel = None  # made again on the link's own loop

    def client(self, *, listening: bool = False) -> Redis:
        """A client for commands, or (``listening``) for the one subscription.

        A command is tried once more on a fresh connection (pooled ones go stale
        when Redis restarts). The subscription never reconnects behind the
        listener's back: it must know, to resync what was published meanwhile.
        """
        retry = Retry(NoBackoff(), 0 if listening else 1)
        kwargs = {**self.options}
        kwargs["retry"] = retry if listening else kwargs.get("retry", retry)
        if self.sentinels is None or self.master_name is None:
            made: Redis = Redis.from_url(self.url, **kwargs)  # untyped in redis 5
            return made
        if self._sentinel is None:
            # Through a plain callable: how redis-py types Sentinel changes between
            # its releases, and lint must not depend on that (see pyproject.toml).
            make_sentinel: Callable[..., Sentinel] = Sentinel
            self._sentinel = make_sentinel(
                [(host, port) for host, port in self.sentinels],
                sentinel_kwargs=self.sentinel_kwargs,
                **kwargs,
            )
        client: Redis = self._sentinel.master_for(self.master_name, **kwargs)
        return client

    async def aclose(self) -> None:
        """Close the connections to the sentinels (each client closes its own)."""
        sentinel, self._sentinel = self._sentinel, None
        if sentinel is not None:
            for connection in sentinel.sentinels:
                await connection.aclose()
