"""Prometheus metrics of a scoring worker, on a private registry served over HTTP.

Every instance owns its `CollectorRegistry`, so two workers (or two tests) in one process
never collide on metric names. `serve(port)` exposes it with
`prometheus_client.start_http_server`; port 0 leaves it unexposed (the metrics still
count and can be read with `sample`).

End-to-end latency is observed **at produce time**: when a served prediction is handed
to the idempotent producer, as wall clock now minus the source transaction's Kafka
timestamp (`source_timestamp`), once per event. Broker acknowledgement is not included;
the producer's `linger.ms` (5 ms) is, for the records' CreateTime, but not here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = ["ScoringMetrics"]

_MS_BUCKETS = (1, 2, 5, 10, 20, 30, 50, 75, 100, 250, 500, 1000, 2500, 5000, 10000, 60000)
_SIZE_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


class ScoringMetrics:
    """The scoring worker's counters, gauges and histograms (names `skewless_scoring_*`)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "skewless_scoring_events", "Feature vectors scored (rate() gives events/s)", registry=r
        )
        self.dead_letters = Counter(
            "skewless_scoring_dead_letters", "Records sent to the dead-letter topic", registry=r
        )
        self.predictions = Counter(
            "skewless_scoring_predictions", "Prediction records produced", ["variant"], registry=r
        )
        self.drift_metrics = Counter(
            "skewless_scoring_drift_metrics", "DriftMetric records produced", ["level"], registry=r
        )
        self.batch_size = Histogram(
            "skewless_scoring_batch_size", "Events per scored micro-batch",
            buckets=_SIZE_BUCKETS, registry=r,
        )  # fmt: skip
        self.inference_ms = Histogram(
            "skewless_scoring_inference_ms",
            "Wall time of one batch through every variant's onnxruntime call, ms",
            buckets=_MS_BUCKETS,
            registry=r,
        )
        self.latency_ms = Histogram(
            "skewless_scoring_e2e_latency_ms",
            "Served prediction handed to the producer minus the source Kafka timestamp, ms",
            buckets=_MS_BUCKETS,
            registry=r,
        )
        self.position = Gauge(
            "skewless_scoring_consumer_position",
            "Next offset to score per source partition",
            ["topic", "partition"],
            registry=r,
        )
        self.model_generation = Gauge(
            "skewless_scoring_model_generation", "Model sets swapped in by the watcher", registry=r
        )
        self.registry_error = Gauge(
            "skewless_scoring_registry_error",
            "1 while the latest registry poll failed (the last good models keep serving)",
            registry=r,
        )

    def follow(self, generation: Callable[[], int], error: Callable[[], bool]) -> None:
        """Read the model generation and registry error at scrape time from these callables."""
        self.model_generation.set_function(lambda: float(generation()))
        self.registry_error.set_function(lambda: 1.0 if error() else 0.0)

    def serve(self, port: int, *, addr: str = "127.0.0.1") -> None:
        """Expose the metrics on `port` (0: do nothing); loopback unless `addr` says otherwise."""
        if port:
            start_http_server(port, addr=addr, registry=self.registry)

    def positions(self, topic: str, next_offsets: Mapping[int, int]) -> None:
        """Record the next offset to read of each partition in `next_offsets`."""
        for partition, offset in next_offsets.items():
            self.position.labels(topic, str(partition)).set(offset)

    def sample(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        """The current value of sample `name` (e.g. ``skewless_scoring_events_total``)."""
        return self.registry.get_sample_value(name, dict(labels or {}))
