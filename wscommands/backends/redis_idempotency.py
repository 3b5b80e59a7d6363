"""The Redis keys and Lua scripts of idempotency records (claims, renewals, finished replies,
releases), each atomic in Redis; the keys of one owner share a Cluster hash tag."""

from __future__ import annotations

from .redis_scripts import NOW

# KEYS: records hash, expiry set. Drops what expired.
_SWEEP = """
for _, k in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  redis.call('HDEL', KEYS[1], k)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
"""

#: ARGV: key, lease ms. Returns the record (P, D..., L) or nil when claimed now.
IDEMPOTENCY_CLAIM = (
    NOW
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
    NOW
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
    NOW
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


def record_keys(prefix: str, owner: str) -> list[str]:
    """The records hash and expiry set of an idempotency owner (one Cluster slot)."""
    return [f"{prefix}:{{i:{owner}}}:r", f"{prefix}:{{i:{owner}}}:t"]
