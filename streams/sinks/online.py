"""Redis online store writer: newest vector per entity, compare-and-set in one script.

One Lua script call per chunk of keys; for each key it compares the stored (event time,
partition, offset) with the incoming one and writes only if the incoming event is not
older, then sets the TTL. Scripts run atomically, so each key's check-and-write is too.
Replays of the same event are idempotent; an older event never overwrites a newer one, no
matter how writers interleave.

`submit` overlaps a write with the caller's next batch without a thread: the calls are
packed (by hiredis, in C) and sent at once on a connection of the client's pool, and their
replies are read by the next `submit` or `drain`, while the server has been running the
scripts. At most one write is in flight, so writes reach Redis in submission order. (A
background thread did the same with redis-py's pipeline, whose per-argument encoding in
Python held the interpreter lock ~1 s per 100,000 events and took it from the worker
whenever the worker let go of it: Arrow builds do, many times per batch.) The scripts are
idempotent, so a write whose connection failed is sent once more on a fresh one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

import hiredis
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from schemas.features import FeatureSet, FeatureVector
from schemas.features.online import encode_fields, entity_key
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
        self._sent: _Sent | None = None

    def write(self, vectors: Iterable[FeatureVector]) -> int:
        """Write `vectors` in one pipelined round trip; returns how many keys were written.

        Within the batch only the newest vector per entity key is sent.
        """
        calls = self._calls(vectors)
        self.drain()
        return self._finish(self._send(calls)) if calls else 0

    def submit(self, vectors: Iterable[FeatureVector]) -> None:
        """Send the write of `vectors` now, after reading the previous one's replies."""
        calls = self._calls(vectors)
        self.drain()
        if calls:
            self._sent = self._send(calls)

    def drain(self) -> int:
        """Read the replies of the write in flight (if any); the keys it wrote.

        Raises `StoreError` if it failed.
        """
        sent, self._sent = self._sent, None
        return 0 if sent is None else self._finish(sent)

    def close(self) -> None:
        """Drain."""
        self.drain()

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
        encoded: dict[int, tuple[bytes, ...]] = {}  # a vector newest for several keys: once
        calls: list[_Call] = []
        for start in range(0, len(items), _KEYS_PER_CALL):
            keys: list[str] = []
            args: list[bytes] = []
            for key, (vector, ttl) in items[start : start + _KEYS_PER_CALL]:
                f = encoded.get(id(vector))
                if f is None:
                    f = encoded[id(vector)] = encode_fields(vector)  # _t _p _o _m _v
                keys.append(key)
                args += (f[0], f[1], f[2], ttl, f[3], f[4])
            calls.append((keys, args))
        return calls

    def _send(self, calls: list[_Call], *, retried: bool = False) -> _Sent:
        """Pack `calls` and send them on a connection of the pool, replies unread."""
        packed = [_pack(("EVALSHA", self._sha, len(k), *k, *a)) for k, a in calls]
        connection: Any = None
        try:
            connection = self._client.connection_pool.get_connection()
            connection.send_packed_command(packed)
        except redis.RedisError as exc:
            self._discard(connection)
            if retried or not isinstance(exc, _TRANSIENT):
                raise self._failed(calls, exc) from exc
            return self._send(calls, retried=True)  # the scripts are idempotent
        return _Sent(connection, calls, retried)

    def _finish(self, sent: _Sent) -> int:
        """Read the replies of `sent`; scripts a server lost run again once it has them."""
        connection, calls = sent.connection, sent.calls
        results: list[Any] = []
        try:
            for _ in calls:
                try:
                    results.append(connection.read_response())
                except ResponseError as exc:  # an error reply; the next one follows
                    results.append(exc)
        except redis.RedisError as exc:
            self._discard(connection)
            if sent.retried or not isinstance(exc, _TRANSIENT):
                raise self._failed(calls, exc) from exc
            return self._finish(self._send(calls, retried=True))  # idempotent: again
        except BaseException:
            self._discard(connection)
            raise
        self._client.connection_pool.release(connection)
        lost = [c for c, r in zip(calls, results, strict=True) if isinstance(r, NoScriptError)]
        if lost:  # a restarted or flushed server forgot the script
            self._client.script_load(CAS_SCRIPT)
            results = [r for r in results if not isinstance(r, NoScriptError)]
            results.append(self._finish(self._send(lost)))
        for result in results:
            if isinstance(result, Exception):
                raise self._failed(calls, result) from result
        return sum(int(r) for r in results)

    def _discard(self, connection: Any) -> None:
        """Close a connection in an unknown state and give it back to the pool."""
        if connection is not None:
            connection.disconnect()
            self._client.connection_pool.release(connection)

    @staticmethod
    def _failed(calls: list[_Call], exc: Exception) -> StoreError:
        keys = sum(len(k) for k, _ in calls)
        return StoreError(f"Redis online store write of {keys} keys failed: {exc}")


@dataclass(frozen=True)
class _Sent:
    """A write sent on `connection` whose replies are not read yet."""

    connection: Any  # a redis-py Connection (its I/O methods are untyped)
    calls: list[_Call]
    retried: bool


_Call = tuple[list[str], list[bytes]]
_TRANSIENT = (RedisConnectionError, RedisTimeoutError)
# hiredis packs a command's arguments in C (its stub types the tuple too narrowly).
_pack = cast("Callable[[tuple[Any, ...]], bytes]", hiredis.pack_command)
