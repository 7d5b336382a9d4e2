"""Redis online store writer: newest vector per entity, compare-and-set in one script.

One Lua script call per chunk of keys; for each key it compares the stored (event time,
partition, offset) with the incoming one and writes only if the incoming event is not
older, then sets the TTL. Scripts run atomically, so each key's check-and-write is too.
Replays of the same event are idempotent; an older event never overwrites a newer one, no
matter how writers interleave.

`submit` overlaps a write with the caller's next batch: the commands are built on the
caller's thread, then one background thread sends them and waits for the server (socket
I/O and the scripts' run time, ~2/3 of a write, release the GIL). At most one write is in
flight, so writes reach Redis in submission order; `drain` waits for it and raises its
error, if any.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import redis
from redis.exceptions import NoScriptError

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
        self._sha = client.script_load(CAS_SCRIPT)
        self._ttls = [str(int(v.ttl.total_seconds() * 1000)).encode() for v in feature_set.views]
        # Each view's key up to the entity id: `entity_key` with the id appended.
        self._key_heads = [
            entity_key(feature_set, v.entity.name, "", prefix=prefix) for v in feature_set.views
        ]
        self._executor: ThreadPoolExecutor | None = None
        self._in_flight: Future[int] | None = None

    def write(self, vectors: Iterable[FeatureVector]) -> int:
        """Write `vectors` in one pipelined round trip; returns how many keys were written.

        Within the batch only the newest vector per entity key is sent.
        """
        self.drain()
        return self._execute(self._calls(vectors))

    def submit(self, vectors: Iterable[FeatureVector]) -> None:
        """Start writing `vectors` in the background, after the previous submit completed."""
        calls = self._calls(vectors)
        self.drain()
        if calls:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="redis-online")
            self._in_flight = self._executor.submit(self._execute, calls)

    def drain(self) -> int:
        """Wait for the write in flight (if any); the keys it wrote. Raises its `StoreError`."""
        in_flight, self._in_flight = self._in_flight, None
        return 0 if in_flight is None else in_flight.result()

    def close(self) -> None:
        """Drain, then stop the background thread."""
        try:
            self.drain()
        finally:
            if self._executor is not None:
                self._executor.shutdown()
                self._executor = None

    def _calls(self, vectors: Iterable[FeatureVector]) -> list[_Call]:
        """The script calls writing the newest of `vectors` per key, `_KEYS_PER_CALL` each."""
        newest: dict[str, tuple[FeatureVector, bytes]] = {}
        for vector in vectors:
            for head, entity_id, ttl in zip(self._key_heads, vector.keys, self._ttls, strict=True):
                key = head + entity_id
                held = newest.get(key)
                if held is None or held[0].order_key <= vector.order_key:
                    newest[key] = (vector, ttl)
        items = list(newest.items())
        encoded: dict[int, dict[str, bytes]] = {}  # a vector newest for several keys: once
        calls: list[_Call] = []
        for start in range(0, len(items), _KEYS_PER_CALL):
            keys: list[str] = []
            args: list[bytes] = []
            for key, (vector, ttl) in items[start : start + _KEYS_PER_CALL]:
                f = encoded.get(id(vector))
                if f is None:
                    f = encoded[id(vector)] = encode_hash(vector)
                keys.append(key)
                args += (f["_t"], f["_p"], f["_o"], ttl, f["_m"], f["_v"])
            calls.append((keys, args))
        return calls

    def _execute(self, calls: list[_Call]) -> int:
        """Run `calls` in one round trip (the script by its sha; loaded again if Redis lost it)."""
        if not calls:
            return 0
        try:
            results = self._run(calls)
            lost = [c for c, r in zip(calls, results, strict=True) if isinstance(r, NoScriptError)]
            if lost:  # a restarted or flushed server forgot the script
                self._client.script_load(CAS_SCRIPT)
                results = [r for r in results if not isinstance(r, NoScriptError)]
                results += self._run(lost)
            for result in results:
                if isinstance(result, Exception):
                    raise result
        except redis.RedisError as exc:
            msg = f"Redis online store write of {sum(len(k) for k, _ in calls)} keys failed: {exc}"
            raise StoreError(msg) from exc
        return sum(int(r) for r in results)

    def _run(self, calls: list[_Call]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(self._sha, len(keys), *keys, *args)
        return pipe.execute(raise_on_error=False)


_Call = tuple[list[str], list[bytes]]
