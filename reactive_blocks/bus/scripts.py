"""The Redis bus's keys, channels and Lua scripts.

Each script runs atomically in Redis, so a revision is assigned, recorded and
published in one step (every process agrees on it, and a channel carries a scope's
events in revision order), and presence expiry uses the Redis server's clock (the
processes' clocks never have to agree).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = [
    "CONTROL",
    "NEW_EPOCH",
    "POSITION",
    "PRESENCE_LEAVE",
    "PRESENCE_READ",
    "PRESENCE_REFRESH",
    "PUBLISH",
    "Keys",
    "Script",
]


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
        self.server = f"{prefix}:server"  # the run id of the server of the epoch
        self.control = f"{prefix}:control"
        self.controls = f"{prefix}:controls"  # the stream that keeps them
        self._channel = f"{prefix}:scope:"

    def revision(self, scope: str) -> str:
        return f"{self.prefix}:rev:{scope}"

    def status(self, process: str) -> str:
        """A process's report for ``manage.py reactive_status`` (``*``: all)."""
        return f"{self.prefix}:status:{process}"

    def presence(self, scope: str) -> list[str]:
        """The scope's live connections, and those lingering after leaving."""
        return [f"{self.prefix}:presence:{scope}", f"{self.prefix}:left:{scope}"]

    def channel(self, scope: str) -> str:
        return self._channel + scope

    def scope_of(self, channel: bytes | str) -> str | None:
        """The scope whose channel this is; None for the control channel."""
        name = channel.decode() if isinstance(channel, bytes) else channel
        return name[len(self._channel) :] if name.startswith(self._channel) else None


# Both scripts below start a new epoch (ARGV[1], fresh) when Redis has no epoch (it
# lost its data) or when the server is not the one that started the current epoch:
# a restart from a snapshot or a failover to a replica may have lost the latest
# numbers, and numbers must never be handed out twice in one epoch.
_EPOCH = """
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
local epoch = redis.call('GET', KEYS[2])
if (not epoch) or redis.call('GET', KEYS[3]) ~= run then
  epoch = ARGV[1]
  redis.call('SET', KEYS[2], epoch)
  redis.call('SET', KEYS[3], run)
end
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
"""

# KEYS: sequence, epoch, server run id, the scope's revision. ARGV: fresh epoch,
# revision time-to-live (s), channel, kind ("event"/"resync"), event JSON.
PUBLISH = Script(
    _EPOCH
    + """
seq = redis.call('INCR', KEYS[1])
local prev = redis.call('GET', KEYS[4]) or '0'
redis.call('SET', KEYS[4], seq, 'EX', tonumber(ARGV[2]))
redis.call('PUBLISH', ARGV[3], '{"v":1,"kind":"' .. ARGV[4] .. '","epoch":"' ..
  epoch .. '","rev":' .. seq .. ',"prev":' .. prev .. ',"event":' .. ARGV[5] .. '}')
return {epoch, seq}
"""
)

# KEYS: sequence, epoch, server run id[, the scope's revision]. ARGV: fresh epoch.
POSITION = Script(
    _EPOCH
    + """
local rev = 0
if KEYS[4] then rev = tonumber(redis.call('GET', KEYS[4]) or '0') end
return {epoch, seq, rev}
"""
)

# KEYS: epoch, server run id. ARGV: fresh epoch. Starts a new history at once
# (changes were lost that no revision can describe): every page resyncs.
NEW_EPOCH = Script(
    """
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], string.match(redis.call('INFO', 'server'), 'run_id:(%w+)'))
return ARGV[1]
"""
)

# KEYS: the control stream. ARGV: the control's JSON, the control channel, the
# stream's length bound. Controls are kept (a listener that was disconnected reads
# what it missed) and announced as "<stream id> <JSON>".
CONTROL = Script(
    """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'm', ARGV[1])
redis.call('PUBLISH', ARGV[2], id .. ' ' .. ARGV[1])
return id
"""
)

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# Presence: KEYS[1] holds the live connections, KEYS[2] those that left less than
# the grace period ago (still listed, so a reload does not flicker the list).

# ARGV: time-to-live (ms), then members. Adds or renews them and sweeps out the
# expired (connections of a process that died); returns {swept, added}.
PRESENCE_REFRESH = Script(
    _NOW
    + """
local swept = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local added = 0
for i = 2, #ARGV do
  added = added + redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
return {swept, added}
"""
)

# ARGV: grace (ms), member. The member leaves; it lingers for the grace period.
PRESENCE_LEAVE = Script(
    _NOW
    + """
redis.call('ZREM', KEYS[1], ARGV[2])
if tonumber(ARGV[1]) > 0 then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), ARGV[2])
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[1]) * 2)
end
return 0
"""
)

# Returns the members that have not expired, live or lingering.
PRESENCE_READ = Script(
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  table.insert(members, member)
end
return members
"""
)
