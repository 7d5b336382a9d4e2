"""The online store's compare-and-set: an older event never overwrites a newer one."""

from __future__ import annotations

import random
import threading

import pytest
import redis

from schemas.features import FeatureVector
from schemas.features.fraud import FRAUD_FEATURES
from schemas.features.online import decode_hash, entity_key
from skewless.endpoints import Endpoints
from streams.errors import StoreError
from streams.sinks.online import RedisOnlineWriter

pytestmark = pytest.mark.integration


def _vector(card: str, event_time: int, partition: int, offset: int) -> FeatureVector:
    values = tuple(float(event_time % 997 + i) for i in range(len(FRAUD_FEATURES.feature_names)))
    return FeatureVector(
        event_id=f"{card}-{event_time}-{partition}-{offset}",
        keys=(card, "m1"),
        event_time=event_time,
        source_timestamp=event_time,
        source_partition=partition,
        source_offset=offset,
        computed_at=event_time,
        definition_version=FRAUD_FEATURES.version,
        late=False,
        values=values,
    )


def test_concurrent_writers_in_any_order_leave_the_newest_vector(
    clean_redis: redis.Redis, services: Endpoints
) -> None:
    cards = [f"c{i}" for i in range(20)]
    rng = random.Random(3)
    vectors = [
        _vector(card, 1_767_225_600_000 + rng.randrange(50) * 1000, rng.randrange(4), i)
        for i in range(4_000)
        for card in [rng.choice(cards)]
    ]
    shards = [vectors[i::4] for i in range(4)]
    for shard in shards:
        rng.shuffle(shard)

    def write(shard: list[FeatureVector]) -> None:
        writer = RedisOnlineWriter(
            redis.Redis.from_url(services.redis_url), FRAUD_FEATURES, prefix="cas"
        )
        for start in range(0, len(shard), 37):  # small batches interleave across threads
            writer.write(shard[start : start + 37])

    threads = [threading.Thread(target=write, args=(shard,)) for shard in shards]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    for card in cards:
        newest = max((v for v in vectors if v.keys[0] == card), key=lambda v: v.order_key)
        stored = clean_redis.hgetall(entity_key(FRAUD_FEATURES, "card", card, prefix="cas"))
        assert decode_hash(FRAUD_FEATURES, stored) == newest


def test_an_older_event_is_rejected_and_an_equal_one_is_idempotent(
    clean_redis: redis.Redis,
) -> None:
    writer = RedisOnlineWriter(clean_redis, FRAUD_FEATURES, prefix="cas")
    new, old = _vector("c1", 2_000, 0, 10), _vector("c1", 1_000, 3, 99)
    assert writer.write([new]) == 2  # card and merchant keys
    assert writer.write([old]) == 0
    assert writer.write([new]) == 2  # a replay of the same event rewrites the same bytes
    stored = clean_redis.hgetall(entity_key(FRAUD_FEATURES, "card", "c1", prefix="cas"))
    assert decode_hash(FRAUD_FEATURES, stored) == new
    ttl_ms = clean_redis.pttl(entity_key(FRAUD_FEATURES, "card", "c1", prefix="cas"))
    assert 0 < ttl_ms <= 30 * 86_400_000


def test_background_writes_land_in_order_and_survive_a_flushed_script_cache(
    clean_redis: redis.Redis,
) -> None:
    writer = RedisOnlineWriter(clean_redis, FRAUD_FEATURES, prefix="cas")
    first, second = _vector("c1", 1_000, 0, 1), _vector("c1", 2_000, 0, 2)
    writer.submit([first])
    clean_redis.script_flush()  # as a restarted server would have it
    writer.submit([second])
    assert writer.drain() == 2
    writer.close()
    stored = clean_redis.hgetall(entity_key(FRAUD_FEATURES, "card", "c1", prefix="cas"))
    assert decode_hash(FRAUD_FEATURES, stored) == second


def test_a_write_whose_connection_dropped_is_sent_again(
    clean_redis: redis.Redis, services: Endpoints
) -> None:
    """Sent while the server holds writes back, then cut: only a second send can land it."""
    admin = redis.Redis.from_url(services.redis_url)
    writer = RedisOnlineWriter(clean_redis, FRAUD_FEATURES, prefix="cas")
    vector = _vector("c1", 1_000, 0, 1)
    admin.client_pause(300, all=False)  # write commands (scripts too) wait 300 ms
    writer.submit([vector])
    assert admin.client_kill_filter(_type="normal", skipme=True) >= 1  # the writer's
    assert writer.drain() == 2
    stored = clean_redis.hgetall(entity_key(FRAUD_FEATURES, "card", "c1", prefix="cas"))
    assert decode_hash(FRAUD_FEATURES, stored) == vector


def test_an_error_reply_is_a_store_error_and_the_writer_goes_on(clean_redis: redis.Redis) -> None:
    writer = RedisOnlineWriter(clean_redis, FRAUD_FEATURES, prefix="cas")
    clean_redis.set(entity_key(FRAUD_FEATURES, "card", "c1", prefix="cas"), "not a hash")
    with pytest.raises(StoreError, match=r"write of 2 keys failed: .*WRONGTYPE"):
        writer.write([_vector("c1", 1_000, 0, 1)])
    assert writer.write([_vector("c2", 1_000, 0, 2)]) == 2
