"""The Redis bus's keys, channels and Lua scripts.

Each script runs atomically in Redis, so a revision is assigned, recorded and
published in one step (every process agrees on it, and a channel carries a scope's
events in revision order), and presence expiry uses the Redis server's clock (the
processes' clocks never have to agree).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["PRESENCE_LEAVE", "PRESENCE_READ", "PRESENCE_REFRESH", "Keys", "Script"]


@dataclass(frozen=True, slots=True)
class Script:
    source: str

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.source.encode()).hexdigest()


class Keys:
    """Every key and channel name, under one prefix (two sites may share a Redis)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.sequence = f"{prefix}:seq"
        self.epoch = f"{prefix}:epoch"
        self.control = f"{prefix}:control"
        self._channel = f"{prefix}:scope:"

    def revision(self, scope: str) -> str:
        return f"{self.prefix}:rev:{scope}"

    def presence(self, scope: str) -> str:
        return f"{self.prefix}:presence:{scope}"

    def channel(self, scope: str) -> str:
        return self._channel + scope

    def scope_of(self, channel: bytes | str) -> str | None:
        """The scope whose channel this is; None for the control channel."""
        name = channel.decode() if isinstance(channel, bytes) else channel
        return name[len(self._channel) :] if name.startswith(self._channel) else None


# Both scripts below start a new epoch when Redis has no epoch (it lost its data)
# or when its sequence is behind one this process has already seen (a failover to
# a replica that missed writes): numbers must never be handed out twice in one
# epoch. ARGV[1] is a fresh epoch, ARGV[2] the highest sequence seen here.
_EPOCH = """
local epoch = redis.call('GET', KEYS[2])
local seen = tonumber(ARGV[2])
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
if (not epoch) or seq < seen then
  epoch = ARGV[1]
  redis.call('SET', KEYS[2], epoch)
  if seq < seen then
    seq = seen
    redis.call('SET', KEYS[1], seq)
  end
end
"""

# KEYS: sequence, epoch, the scope's revision. ARGV: fresh epoch, highest sequence
# seen, revision time-to-live (s), channel, kind ("event"/"resync"), event JSON.
PUBLISH = Script(
    _EPOCH
    + """
seq = redis.call('INCR', KEYS[1])
local prev = redis.call('GET', KEYS[3]) or '0'
redis.call('SET', KEYS[3], seq, 'EX', tonumber(ARGV[3]))
redis.call('PUBLISH', ARGV[4], '{"v":1,"kind":"' .. ARGV[5] .. '","epoch":"' ..
  epoch .. '","rev":' .. seq .. ',"prev":' .. prev .. ',"event":' .. ARGV[6] .. '}')
return {epoch, seq}
"""
)

# KEYS: sequence, epoch[, the scope's revision]. ARGV: fresh epoch, highest seen.
POSITION = Script(
    _EPOCH
    + """
local rev = 0
if KEYS[3] then rev = tonumber(redis.call('GET', KEYS[3]) or '0') end
return {epoch, seq, rev}
"""
)

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: the scope's presence set. ARGV: time-to-live (ms), then members. Adds or
# refreshes them, sweeps out the expired ones and returns how many were swept.
PRESENCE_REFRESH = Script(
    _NOW
    + """
local swept = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
return swept
"""
)

# KEYS: the scope's presence set. ARGV: grace (ms), member. A member that leaves
# stays listed for the grace period, so a reload does not flicker the list.
PRESENCE_LEAVE = Script(
    _NOW
    + """
if tonumber(ARGV[1]) > 0 then
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[2])
else
  redis.call('ZREM', KEYS[1], ARGV[2])
end
return 0
"""
)

# KEYS: the scope's presence set. Returns the members that have not expired.
PRESENCE_READ = Script(
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""
)
