"""Request rate per user: a token bucket, in Redis when Redis is the broker (so that every API
process shares it), in this process on the embedded default (one API process)."""

from __future__ import annotations

import time
from typing import Any, Protocol

from models.settings import Settings

# KEYS[1] the bucket; ARGV rate, burst, now, wanted. Takes up to `wanted` whole tokens; returns
# {granted, seconds to wait} (a wait only when none could be granted).
_TAKE = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local wanted = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]) or burst, tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local granted, wait = 0, 0
if tokens >= 1 then
  granted = math.min(wanted, math.floor(tokens))
  tokens = tokens - granted
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return {granted, tostring(wait)}
"""
LEASE_SECONDS = 0.1
"""How much of a user's rate one API process takes from Redis at once (and keeps at most a
second): a round trip per request cost a quarter of a status poll."""


class RateLimiter(Protocol):
    async def take(self, user_id: str) -> float:
        """Take one request from the user's bucket: 0, or the seconds until one is there."""


class LocalBuckets:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.buckets: dict[str, tuple[float, float]] = {}

    async def take(self, user_id: str) -> float:
        now = time.monotonic()
        tokens, at = self.buckets.get(user_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1:
            self.buckets[user_id] = (tokens - 1, now)
            return 0.0
        self.buckets[user_id] = (tokens, now)
        return (1 - tokens) / self.rate


class RedisBuckets:
    def __init__(self, url: str, rate: float, burst: int, prefix: str) -> None:
        import redis.asyncio

        self.redis: Any = redis.asyncio.Redis.from_url(url)
        self.script = self.redis.register_script(_TAKE)
        self.rate = rate
        self.burst = burst
        self.prefix = prefix
        # A lease of whole tokens: small beside the burst, so that no process hoards it.
        self.lease = max(1, min(int(rate * LEASE_SECONDS), burst // 10))
        self.leased: dict[str, tuple[int, float]] = {}  # user: (tokens, usable until)

    async def take(self, user_id: str) -> float:
        now = time.monotonic()
        tokens, until = self.leased.get(user_id, (0, now))
        if tokens > 0 and now < until:
            self.leased[user_id] = (tokens - 1, until)
            return 0.0
        self.leased.pop(user_id, None)  # spent or stale: unused tokens are not given back
        granted, wait = await self.script(
            keys=[f"{self.prefix}:{user_id}"],
            args=[self.rate, self.burst, time.time(), self.lease],
        )
        if int(granted) > 1:
            if len(self.leased) >= 4096:
                self.leased.clear()
            self.leased[user_id] = (int(granted) - 1, now + 1.0)
        return 0.0 if int(granted) > 0 else float(wait)


def rate_limiter(settings: Settings) -> RateLimiter:
    """Buckets shared through Redis when it is the broker, else this process's own."""
    if settings.broker_url.startswith(("redis://", "rediss://")):
        prefix = f"remotefit:rate:{settings.queue}"
        return RedisBuckets(
            settings.broker_url, settings.rate_per_second, settings.rate_burst, prefix
        )
    return LocalBuckets(settings.rate_per_second, settings.rate_burst)
