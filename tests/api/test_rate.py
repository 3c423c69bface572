"""The per-user request rate: a token bucket in this process, and one shared through Redis."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from api.rate import LocalBuckets, RateLimiter, RedisBuckets, rate_limiter
from models.settings import Settings
from tests.services import REDIS_URL, need, redis_available


async def _takes(limiter: RateLimiter, user: str, count: int) -> list[float]:
    return [await limiter.take(user) for _ in range(count)]


async def _check_bucket(limiter: RateLimiter) -> None:
    waits = await _takes(limiter, "ana", 4)
    assert waits[:3] == [0.0, 0.0, 0.0]  # the burst
    assert 0.3 < waits[3] <= 0.5  # then 2 per second
    assert await _takes(limiter, "bob", 1) == [0.0]  # each user has their own bucket


def test_local_bucket() -> None:
    asyncio.run(_check_bucket(LocalBuckets(rate=2.0, burst=3)))


def test_redis_bucket_is_shared_by_every_api_process() -> None:
    problem = redis_available()
    if problem:
        need(problem)
    prefix = f"remotefit-test:{uuid.uuid4().hex}"

    async def check() -> None:
        await _check_bucket(RedisBuckets(REDIS_URL, rate=2.0, burst=3, prefix=prefix))
        # A second API process sees the same bucket, already empty.
        other = RedisBuckets(REDIS_URL, rate=2.0, burst=3, prefix=prefix)
        assert (await _takes(other, "ana", 1))[0] > 0

    asyncio.run(check())


@pytest.mark.parametrize(
    ("broker", "kind"), [("redis://127.0.0.1:6379/0", RedisBuckets), ("", LocalBuckets)]
)
def test_the_bucket_follows_the_broker(broker: str, kind: type) -> None:
    assert isinstance(rate_limiter(Settings(broker_url=broker)), kind)


def test_a_redis_bucket_is_leased_in_small_parts_and_never_overspent() -> None:
    problem = redis_available()
    if problem:
        need(problem)
    prefix = f"remotefit-test:{uuid.uuid4().hex}"

    async def check() -> None:
        one = RedisBuckets(REDIS_URL, rate=100.0, burst=100, prefix=prefix)
        other = RedisBuckets(REDIS_URL, rate=100.0, burst=100, prefix=prefix)
        assert one.lease == 10  # a tenth of a second of the rate: one round trip per 10
        assert await _takes(one, "ana", 1) == [0.0]
        left = float(await one.redis.hget(f"{prefix}:ana", "tokens"))
        assert 89 <= left < 91  # ten taken at once, nine of them kept in this process
        # Two API processes taking in turn get the burst between them, and no more.
        granted, started = 1, time.monotonic()
        for _ in range(150):
            granted += sum(w == 0.0 for w in await _takes(one, "ana", 1))
            granted += sum(w == 0.0 for w in await _takes(other, "ana", 1))
        refilled = 100 * (time.monotonic() - started)
        assert 100 <= granted <= 100 + refilled + 1  # the burst, and what refilled meanwhile
        await one.redis.aclose()
        await other.redis.aclose()

    asyncio.run(check())
