"""A deterministic synthetic card-fraud world, and producing it to Kafka.

Same seed and options, same byte-for-byte stream; a saved `GeneratorState` lets the next
run extend the same history. Takes plain values (config dicts, topic names), never the
application's settings. Modules: `population` (cards, merchants), `legit` and `fraud`
(the patterns), `clock` (event time, late delivery), `chargebacks` (labels), `drift`,
`window` and `world` (the stream), `state` (continuation), `produce` (Kafka).
"""

from streams.generator.batch import Pattern
from streams.generator.clock import START_MS
from streams.generator.config import MAX_FRAUD_RATE, WorldConfig
from streams.generator.drift import Drift, DriftKind
from streams.generator.errors import GeneratorError, ProduceError
from streams.generator.pacing import TokenBucket
from streams.generator.state import GeneratorState, load_state, save_state
from streams.generator.world import PATTERNS, Emitted, World

__all__ = [
    "MAX_FRAUD_RATE",
    "PATTERNS",
    "START_MS",
    "Drift",
    "DriftKind",
    "Emitted",
    "GeneratorError",
    "GeneratorState",
    "Pattern",
    "ProduceError",
    "TokenBucket",
    "World",
    "WorldConfig",
    "load_state",
    "save_state",
]
