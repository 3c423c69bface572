"""Request rate per user: a token bucket, in Redis when Redis is the broker (so that every API
process shares it), in this process on the embedded default (one API process)."""

from __future__ import annotations

import time
from typing import Any, Protocol

from models.settings import Settings

# KEYS[1] the bucket; ARGV rate, burst, now. Returns the seconds to wait (0: go ahead).
_TAKE = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]) or burst, tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return tostring(wait)
"""


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

    async def take(self, user_id: str) -> float:
        wait = await self.script(
            keys=[f"{self.prefix}:{user_id}"], args=[self.rate, self.burst, time.time()]
        )
        return float(wait)


def rate_limiter(settings: Settings) -> RateLimiter:
    """Buckets shared through Redis when it is the broker, else this process's own."""
    if settings.broker_url.startswith(("redis://", "rediss://")):
        prefix = f"remotefit:rate:{settings.queue}"
        return RedisBuckets(
            settings.broker_url, settings.rate_per_second, settings.rate_burst, prefix
        )
    return LocalBuckets(settings.rate_per_second, settings.rate_burst)
