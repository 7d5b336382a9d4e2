"""The online store layout: how a feature vector sits in Redis, shared by writer and reader.

One hash per entity, `<prefix>:<feature set>:<entity>:<id>`, holding the newest vector of
that entity's events in five fields:

- `_t`, `_p`, `_o`: event time (epoch ms), source partition and offset — the entity's
  newer-than order key, compared by the writer's compare-and-set script;
- `_m`: metadata joined by US (0x1f): event id, source timestamp, computed at, definition
  version, late (0/1), then the entity keys;
- `_v`: the feature values as little-endian float64, in definition order (bit exact).

A reader checks the stored definition version against its own: values are positional.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from schemas.errors import ContractError
from schemas.features.definition import FeatureSet
from schemas.features.vector import FeatureVector

__all__ = [
    "HASH_FIELDS",
    "META_FIELD",
    "ORDER_FIELDS",
    "decode_hash",
    "encode_fields",
    "encode_hash",
    "entity_key",
    "event_id_of",
]

ORDER_FIELDS = ("_t", "_p", "_o")
_SEP = "\x1f"
META_FIELD = "_m"
HASH_FIELDS = (*ORDER_FIELDS, META_FIELD, "_v")


def event_id_of(meta: bytes) -> str:
    """The event id in a stored `_m` field (cheap: for pollers that only need the id)."""
    return meta.split(b"\x1f", 1)[0].decode()


def entity_key(feature_set: FeatureSet, entity: str, entity_id: str, *, prefix: str) -> str:
    """The Redis key of one entity's online vector."""
    return f"{prefix}:{feature_set.name}:{entity}:{entity_id}"


def encode_hash(vector: FeatureVector) -> dict[str, bytes]:
    """The hash fields of `vector` (order key first)."""
    return dict(zip(HASH_FIELDS, encode_fields(vector), strict=True))


def encode_fields(vector: FeatureVector) -> tuple[bytes, bytes, bytes, bytes, bytes]:
    """The values of the hash fields of `vector`, in `HASH_FIELDS` order."""
    meta = _SEP.join(
        (
            vector.event_id,
            str(vector.source_timestamp),
            str(vector.computed_at),
            vector.definition_version,
            "1" if vector.late else "0",
            *vector.keys,
        )
    )
    values = vector.values
    return (
        str(vector.event_time).encode(),
        str(vector.source_partition).encode(),
        str(vector.source_offset).encode(),
        meta.encode(),
        _doubles(len(values)).pack(*values),
    )


# One compiled `struct.Struct` per vector width: `struct.pack` with a format string costs
# ~0.9 us more per vector (the format is built and looked up on every call).
_DOUBLES: dict[int, struct.Struct] = {}


def _doubles(count: int) -> struct.Struct:
    packer = _DOUBLES.get(count)
    if packer is None:
        packer = _DOUBLES[count] = struct.Struct(f"<{count}d")
    return packer


def decode_hash(feature_set: FeatureSet, fields: Mapping[bytes, bytes]) -> FeatureVector:
    """The vector in a hash written by `encode_hash` for `feature_set`.

    Raises `ContractError` when the hash is incomplete or was written by another
    definition version.
    """
    try:
        event_id, source_ts, computed_at, version, late, *keys = fields[b"_m"].decode().split(_SEP)
        packed = fields[b"_v"]
        event_time, partition, offset = (int(fields[f.encode()]) for f in ORDER_FIELDS)
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        msg = f"online vector is incomplete or corrupt: {exc!r}"
        raise ContractError(msg) from exc
    if version != feature_set.version:
        msg = (
            f"online vector was written by definition version {version!r}; "
            f"this reader has {feature_set.name!r} version {feature_set.version!r}"
        )
        raise ContractError(msg)
    count = len(feature_set.feature_names)
    if len(packed) != 8 * count:
        msg = f"online vector holds {len(packed) // 8} values, definition has {count}"
        raise ContractError(msg)
    return FeatureVector(
        event_id=event_id,
        keys=tuple(keys),
        event_time=event_time,
        source_timestamp=int(source_ts),
        source_partition=partition,
        source_offset=offset,
        computed_at=int(computed_at),
        definition_version=version,
        late=late == "1",
        values=_doubles(count).unpack(packed),
    )
