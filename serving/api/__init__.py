"""The online HTTP API: feature lookup and synchronous scoring over the serving runtime.

`create_app(config, watcher=..., redis_client=...)` builds the ASGI app; the pieces it
is made of are public for reuse (the online lookup) and tests (the micro-batcher).
"""

from serving.api.app import create_app
from serving.api.assemble import Assembled, FeatureAssembler
from serving.api.batcher import BatcherClosed, MicroBatcher
from serving.api.config import ApiConfig
from serving.api.lookup import OnlineStore, OnlineStoreError, UnknownEntity
from serving.api.validation import InvalidInput, parse_batch, parse_json, parse_transaction

__all__ = [
    "ApiConfig",
    "Assembled",
    "BatcherClosed",
    "FeatureAssembler",
    "InvalidInput",
    "MicroBatcher",
    "OnlineStore",
    "OnlineStoreError",
    "UnknownEntity",
    "create_app",
    "parse_batch",
    "parse_json",
    "parse_transaction",
]
