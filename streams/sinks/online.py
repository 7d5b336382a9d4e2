"""Redis online store writer: newest vector per entity, compare-and-set in one script.

One Lua script call per chunk of keys; for each key it compares the stored (event time,
partition, offset) with the incoming one and writes only if the incoming event is not
older, then sets the TTL. Scripts run atomically, so each key's check-and-write is too.
Replays of the same event are idempotent; an older event never overwrites a newer one, no
matter how writers interleave.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from schemas.features import FeatureSet, FeatureVector
from schemas.features.online import encode_hash, entity_key
from streams.errors import StoreError

__all__ = ["CAS_SCRIPT", "RedisOnlineWriter"]

CAS_SCRIPT = """
local written = 0
for i = 1, #KEYS do
  local a = (i - 1) * 6
  local nt, np, no = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local cur = redis.call('HMGET', KEYS[i], '_t', '_p', '_o')
  local older = false
  if cur[1] then
    local t, p, o = tonumber(cur[1]), tonumber(cur[2]), tonumber(cur[3])
    older = nt < t or (nt == t and (np < p or (np == p and no < o)))
  end
  if not older then
    redis.call('HSET', KEYS[i], '_t', ARGV[a + 1], '_p', ARGV[a + 2], '_o', ARGV[a + 3],
               '_m', ARGV[a + 5], '_v', ARGV[a + 6])
    local ttl = tonumber(ARGV[a + 4])
    if ttl > 0 then
      redis.call('PEXPIRE', KEYS[i], ttl)
    end
    written = written + 1
  end
end
return written
"""

# Keys per script call: large enough to amortise the client's per-command cost, small
# enough that one call holds the server for well under a millisecond.
_KEYS_PER_CALL = 256


class RedisOnlineWriter:
    """Writes feature vectors to every entity key of the feature set, newest wins."""

    def __init__(self, client: redis.Redis, feature_set: FeatureSet, *, prefix: str) -> None:
        self._client = client
        self._feature_set = feature_set
        self._prefix = prefix
        self._script = client.register_script(CAS_SCRIPT)
        self._ttls = [str(int(v.ttl.total_seconds() * 1000)) for v in feature_set.views]
        self._entities = [v.entity.name for v in feature_set.views]

    def write(self, vectors: Iterable[FeatureVector]) -> int:
        """Write `vectors` in one pipelined round trip; returns how many keys were written.

        Within the batch only the newest vector per entity key is sent.
        """
        newest: dict[str, tuple[FeatureVector, str]] = {}
        for vector in vectors:
            for entity, entity_id, ttl in zip(self._entities, vector.keys, self._ttls, strict=True):
                key = entity_key(self._feature_set, entity, entity_id, prefix=self._prefix)
                held = newest.get(key)
                if held is None or held[0].order_key <= vector.order_key:
                    newest[key] = (vector, ttl)
        if not newest:
            return 0
        pipe = self._client.pipeline(transaction=False)
        items = list(newest.items())
        for start in range(0, len(items), _KEYS_PER_CALL):
            keys: list[str] = []
            args: list[bytes] = []
            for key, (vector, ttl) in items[start : start + _KEYS_PER_CALL]:
                f = encode_hash(vector)
                keys.append(key)
                args += (f["_t"], f["_p"], f["_o"], ttl.encode(), f["_m"], f["_v"])
            self._script(keys=keys, args=args, client=pipe)
        try:
            results = pipe.execute()
        except redis.RedisError as exc:
            msg = f"Redis online store write of {len(newest)} keys failed: {exc}"
            raise StoreError(msg) from exc
        return sum(int(r) for r in results)
