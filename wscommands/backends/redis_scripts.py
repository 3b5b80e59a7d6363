"""Redis keys and Lua scripts of the Redis backend (:mod:`.redis` runs them).

Keys, all under ``WSCOMMANDS["PREFIX"]`` (``wscommands`` by default):

- ``<prefix>:state``: a hash, one field per global-state key, each value JSON text. One
  ``HSET`` writes all keys of an update, so an update is all keys or none.
- ``<prefix>:presence``: a sorted set of processes scored by the unix time their heartbeat
  expires (Redis's own clock, so machines' clocks do not matter).
- ``<prefix>:presence:<process>``: a hash per process, connection id -> JSON entry. Readers
  skip a process whose heartbeat expired, and a live process *reaps* it (takes its entries
  atomically, to announce their leave) at its next wake, which may come long after: other
  processes can run a longer TTL, so wake less often, and learn of a process only at a wake.
  So the hash outlives the heartbeat by :data:`.redis.KEEP_UNREAPED` (a deployment with no
  live process left to reap it leaves nothing behind for longer than that).
- ``<prefix>:stats:<process>``: the process's figures for the operations page (JSON text),
  expiring a few seconds after its last write; read only while the heartbeat is alive.

Every multi-step operation is one Lua script, atomic in Redis: increments never lose an
update, whichever process or connection sends them.

Stream history, per stream (``all``, ``group:<name>``, ``user:<pk>``), two keys that share the
hash tag ``{<stream>}`` so that Redis Cluster keeps them in one slot:

- ``<prefix>:{<stream>}:m``: a hash ``e`` (epoch), ``o`` (last offset). It expires
  ``HISTORY_META_TTL`` after the last push or read, so a quiet stream keeps its position long
  after its pushes have aged out.
- ``<prefix>:{<stream>}:h``: a Redis Stream of the pushes, entry id ``<offset>-0`` (explicit,
  so ids are the offsets), fields ``t`` (Redis time, ms) and ``d`` (the JSON text), trimmed to
  ``HISTORY_SIZE`` entries; it expires ``HISTORY_TTL`` after the last push.

One script appends (epoch check, offset increment, XADD, expiries) atomically, so offsets of a
stream grow by exactly 1 whichever process publishes. A missing hash means the history is lost
(Redis restarted empty, metadata expired): the script starts a new epoch and drops any entry
left of the old one.

Idempotency records, per owner (user pk, session key or ``anon``), two keys under the hash
tag ``{i:<owner>}``: ``<prefix>:{i:<owner>}:r`` (hash: idempotency key -> ``P`` while running,
``D<reply text>`` when done, ``L`` when the reply was too large to keep) and
``<prefix>:{i:<owner>}:t`` (sorted set: idempotency key -> expiry, Redis time in ms). A
finished or released claim is published on ``<prefix>:idempotency`` (``<owner>\\n<key>``), so
the retries waiting for it on any process look again (:mod:`.redis_notify`).
"""

from __future__ import annotations

from typing import Any

#: KEYS: state hash. ARGV: key, amount, 'int' or 'float'. Returns {kind, new value}.
INCREMENT = """
local cur = redis.call('HGET', KEYS[1], ARGV[1]) or '0'
if ARGV[3] == 'int' and string.match(cur, '^-?%d+$') then
  redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
  return {'int', redis.call('HGET', KEYS[1], ARGV[1])}
end
local c = tonumber(cur)
if c == nil or not string.match(cur, '^[-+%d.eE]+$') then
  return redis.error_reply('WSC_NOT_NUMBER')
end
local v = c + tonumber(ARGV[2])
if v ~= v or v == math.huge or v == -math.huge then
  return redis.error_reply('WSC_NOT_FINITE')
end
local s = string.format('%.17g', v)
if not string.find(s, '[.eE]') then s = s .. '.0' end
redis.call('HSET', KEYS[1], ARGV[1], s)
return {'float', s}
"""

#: KEYS: process set, process hash. ARGV: process, ttl ms, ms the entries outlive the ttl,
#: replace flag, number of removals, the removed ids, then id/entry pairs.
PRESENCE_WRITE = """
local t = redis.call('TIME')
local expiry = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[2]) / 1000
if ARGV[4] == '1' then redis.call('DEL', KEYS[2]) end
local n = tonumber(ARGV[5])
for i = 6, 5 + n do redis.call('HDEL', KEYS[2], ARGV[i]) end
for i = 6 + n, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', KEYS[1], string.format('%.6f', expiry), ARGV[1])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]) + tonumber(ARGV[3]))
return redis.call('HLEN', KEYS[2])
"""

#: KEYS: process set. ARGV: prefix of the process hashes. Entries of live processes only.
PRESENCE_READ = """
local t = redis.call('TIME')
local now = string.format('%.6f', tonumber(t[1]) + tonumber(t[2]) / 1000000)
local out = {}
for _, p in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  for _, v in ipairs(redis.call('HVALS', ARGV[1] .. p)) do out[#out + 1] = v end
end
return out
"""

#: KEYS: process set. ARGV: prefix of the process hashes. Takes (and deletes) the entries of
#: every process whose heartbeat expired, so exactly one caller announces their leave;
#: returns {seconds until the next heartbeat expires (-1: none), {process, entries}...}.
PRESENCE_REAP = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local dead = {}
for _, p in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%.6f', now))) do
  dead[#dead + 1] = {p, redis.call('HVALS', ARGV[1] .. p)}
  redis.call('DEL', ARGV[1] .. p)
  redis.call('ZREM', KEYS[1], p)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = '-1'
if first[2] then wait = string.format('%.6f', tonumber(first[2]) - now) end
return {wait, dead}
"""

#: KEYS: process set. ARGV: prefix of the figures keys. The figures of live processes.
STATS_READ = """
local t = redis.call('TIME')
local now = string.format('%.6f', tonumber(t[1]) + tonumber(t[2]) / 1000000)
local out = {}
for _, p in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
  local v = redis.call('GET', ARGV[1] .. p)
  if v then out[#out + 1] = v end
end
return out
"""

# The Redis time in milliseconds (scripts are replicated by effects, so TIME is allowed).
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: history, meta. ARGV: new epoch, meta ttl ms. Sets `epoch`, `offset`.
_ENSURE = """
local meta = redis.call('HMGET', KEYS[2], 'e', 'o')
local epoch, offset = meta[1], tonumber(meta[2])
if not epoch then
  epoch, offset = ARGV[1], 0
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', epoch, 'o', 0)
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
"""

#: ARGV: new epoch, meta ttl ms, text, size, ttl ms. Returns {epoch, offset}.
HISTORY_APPEND = (
    _NOW
    + _ENSURE
    + """
offset = redis.call('HINCRBY', KEYS[2], 'o', 1)
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[4], offset .. '-0', 't', now, 'd', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {epoch, offset}
"""
)

#: ARGV: new epoch, meta ttl ms. Returns {epoch, offset}.
HISTORY_POSITION = _ENSURE + "return {epoch, offset}\n"

#: ARGV: new epoch, meta ttl ms, asked epoch, after offset, ttl ms.
#: Returns {epoch, offset, id1, text1, id2, text2, ...} (entries only if the epoch matches).
HISTORY_READ = (
    _NOW
    + _ENSURE
    + """
local out = {epoch, offset}
local after = tonumber(ARGV[4])
if epoch ~= ARGV[3] or after >= offset then return out end
local oldest = now - tonumber(ARGV[5])
for _, e in ipairs(redis.call('XRANGE', KEYS[1], (after + 1) .. '-0', '+')) do
  if tonumber(e[2][2]) > oldest then
    out[#out + 1] = e[1]
    out[#out + 1] = e[2][4]
  end
end
return out
"""
)

# KEYS: records hash, expiry set. Drops what expired.
_SWEEP = """
for _, k in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  redis.call('HDEL', KEYS[1], k)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
"""

#: ARGV: key, lease ms. Returns the record (P, D..., L) or nil when claimed now.
IDEMPOTENCY_CLAIM = (
    _NOW
    + _SWEEP
    + """
local found = redis.call('HGET', KEYS[1], ARGV[1])
if found then return found end
redis.call('HSET', KEYS[1], ARGV[1], 'P')
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return false
"""
)

#: ARGV: key, lease ms. Extends a running claim.
IDEMPOTENCY_RENEW = (
    _NOW
    + """
if redis.call('HGET', KEYS[1], ARGV[1]) == 'P' then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    redis.call('PEXPIRE', KEYS[2], ARGV[2])
  end
end
return 1
"""
)

#: ARGV: key, record (D<text> or L), ttl ms, max keys, notify channel, notify message.
#: The oldest finished records go first; a running claim ('P') is never dropped (its retry
#: would run the request again). Publishes the message so waiting retries look again.
IDEMPOTENCY_FINISH = (
    _NOW
    + _SWEEP
    + """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
-- Finished in the same millisecond as the newest record: still after it (oldest go first).
local score = now + tonumber(ARGV[3])
local newest = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')[2]
if newest and tonumber(newest) >= score then score = tonumber(newest) + 0.001 end
redis.call('ZADD', KEYS[2], score, ARGV[1])
local done = {}
for _, k in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if redis.call('HGET', KEYS[1], k) ~= 'P' then done[#done + 1] = k end
end
for i = 1, #done - tonumber(ARGV[4]) do
  redis.call('HDEL', KEYS[1], done[i])
  redis.call('ZREM', KEYS[2], done[i])
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
"""
)

#: ARGV: key, notify channel, notify message. Drops a claim that is still running (its run
#: failed or was cancelled) and publishes the message so waiting retries look again.
IDEMPOTENCY_RELEASE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == 'P' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
"""


def history_keys(prefix: str, stream: str) -> list[str]:
    """The history and metadata keys of a stream (one Cluster slot: same hash tag)."""
    return [f"{prefix}:{{{stream}}}:h", f"{prefix}:{{{stream}}}:m"]


def record_keys(prefix: str, owner: str) -> list[str]:
    """The records hash and expiry set of an idempotency owner (one Cluster slot)."""
    return [f"{prefix}:{{i:{owner}}}:r", f"{prefix}:{{i:{owner}}}:t"]


def ms(seconds: float) -> int:
    """Seconds as the whole milliseconds Redis takes (at least 1)."""
    return max(1, int(seconds * 1000))


def text(value: Any) -> str:
    """A Redis reply (bytes) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
