"""Online feature lookup: the stored vector of one entity (or many, in one round trip).

The layout is `schemas.features.online`: one hash per entity holding the vector of the
entity's newest processed event. A missing key (never seen, or expired by the view's TTL)
is `None`, not an error.

The client must be a synchronous `redis.Redis` returning bytes (the default,
`decode_responses=False`); it is thread-safe, so the API calls it from worker threads.

Errors: `UnknownEntity` for an entity the feature set does not have; `OnlineStoreError`
when Redis does not answer or holds a vector this definition cannot read.

>>> store = OnlineStore(redis.Redis(), FRAUD_FEATURES, prefix="skewless")  # doctest: +SKIP
>>> store.get("card", "c1")  # doctest: +SKIP
FeatureVector(event_id='e41', keys=('c1', 'm7'), ...)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import redis

from schemas.errors import ContractError
from schemas.features.definition import FeatureSet
from schemas.features.online import decode_hash, entity_key
from schemas.features.vector import FeatureVector
from serving.errors import ServingError

__all__ = ["OnlineStore", "OnlineStoreError", "UnknownEntity"]


class OnlineStoreError(ServingError):
    """Redis did not answer, or holds a vector this server cannot read."""


class UnknownEntity(ServingError):  # noqa: N818 - reads as the condition, like ModelNotFound
    """The feature set has no entity of that name."""

    def __init__(self, entity: str, known: Sequence[str]) -> None:
        self.entity = entity
        self.known = tuple(known)
        super().__init__(f"unknown entity {entity!r}; expected one of {list(self.known)}")


class OnlineStore:
    """Reads the online vectors of one feature set under one key prefix."""

    def __init__(self, client: redis.Redis, feature_set: FeatureSet, *, prefix: str) -> None:
        self.client = client
        self.feature_set = feature_set
        self.prefix = prefix
        self.entities: tuple[str, ...] = tuple(e.name for e in feature_set.entities)

    def key(self, entity: str, entity_id: str) -> str:
        """The Redis key of `entity`'s vector; `UnknownEntity` for a name not in the set."""
        if entity not in self.entities:
            raise UnknownEntity(entity, self.entities)
        return entity_key(self.feature_set, entity, entity_id, prefix=self.prefix)

    def get(self, entity: str, entity_id: str) -> FeatureVector | None:
        """The stored vector of one entity, None when there is none."""
        key = self.key(entity, entity_id)
        try:
            fields = cast("Mapping[bytes, bytes]", self.client.hgetall(key))
        except redis.RedisError as exc:
            error = self._unavailable(f"HGETALL {key!r}", exc)
            raise error from exc
        return self._decode(key, fields)

    def get_many(self, wanted: Sequence[tuple[str, str]]) -> list[FeatureVector | None]:
        """The stored vectors of `(entity, id)` pairs, in order, in one pipelined round trip."""
        keys = [self.key(entity, entity_id) for entity, entity_id in wanted]
        if not keys:
            return []
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        try:
            answers = pipe.execute()
        except redis.RedisError as exc:
            error = self._unavailable(f"HGETALL of {len(keys)} keys", exc)
            raise error from exc
        return [self._decode(key, fields) for key, fields in zip(keys, answers, strict=True)]

    def ping(self) -> None:
        """Raise `OnlineStoreError` unless Redis answers a PING."""
        try:
            self.client.ping()
        except redis.RedisError as exc:
            error = self._unavailable("PING", exc)
            raise error from exc

    def _decode(self, key: str, fields: Mapping[bytes, bytes]) -> FeatureVector | None:
        if not fields:
            return None
        try:
            return decode_hash(self.feature_set, fields)
        except ContractError as exc:
            msg = f"online vector {key!r} cannot be read by this server: {exc}"
            raise OnlineStoreError(msg) from exc

    @property
    def address(self) -> str:
        """Where the client connects (host:port or socket path), for messages."""
        where = self.client.connection_pool.connection_kwargs
        return str(where.get("path") or f"{where.get('host')}:{where.get('port')}")

    def _unavailable(self, what: str, exc: Exception) -> OnlineStoreError:
        return OnlineStoreError(f"online store (Redis at {self.address}): {what} failed: {exc}")
