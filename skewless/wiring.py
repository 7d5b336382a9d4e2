"""Turn settings and resolved endpoints into the plain configs the rooms take."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from schemas.features import FeatureSet
from schemas.features.fraud import FRAUD_FEATURES
from skewless.endpoints import Endpoints, kafka_config
from skewless.settings import Settings
from streams.sinks.dead_letter import DeadLetterTarget
from streams.sinks.feature_store import FeatureStoreConfig

__all__ = [
    "REDIS_PREFIX",
    "dead_letter_target",
    "feature_set",
    "feature_store_config",
    "recovery_dir",
    "redis_url",
    "schema_registry",
]

REDIS_PREFIX = "skewless"


def feature_set() -> FeatureSet:
    """The feature set this deployment computes (the shipped fraud definition)."""
    return FRAUD_FEATURES


def redis_url(settings: Settings, endpoints: Endpoints | str) -> str:
    """The Redis URL (of `endpoints`, or as given) with the configured password, if any."""
    url = endpoints if isinstance(endpoints, str) else endpoints.redis_url
    if settings.redis_password is not None and "@" not in url:
        scheme, rest = url.split("://", 1)
        url = f"{scheme}://:{settings.redis_password.get_secret_value()}@{rest}"
    return url


def schema_registry(settings: Settings) -> dict[str, str] | None:
    """The registry client config when a registry is configured (Confluent framing)."""
    if settings.schema_registry_url is None:
        return None
    return {"url": settings.schema_registry_url, **settings.schema_registry_options}


def feature_store_config(
    settings: Settings, endpoints: Endpoints, *, app_id: str = "skewless-features"
) -> FeatureStoreConfig:
    return FeatureStoreConfig(
        feature_set=feature_set(),
        app_id=app_id,
        redis_url=redis_url(settings, endpoints),
        redis_prefix=REDIS_PREFIX,
        delta_root=settings.delta_root,
        delta_storage_options=settings.delta_storage_options or None,
        kafka_config=kafka_config(settings, endpoints),
        features_topic=settings.topics.features,
        schema_registry=schema_registry(settings),
        retention=timedelta(hours=settings.delta_retention_hours),
        commit_interval=timedelta(seconds=settings.delta_commit_seconds),
    )


def dead_letter_target(settings: Settings, endpoints: Endpoints) -> DeadLetterTarget:
    return DeadLetterTarget(
        kafka_config(settings, endpoints),
        settings.topics.dead_letter,
        schema_registry=schema_registry(settings),
    )


def recovery_dir(settings: Settings, flow: str) -> Path:
    """Where a dataflow's Bytewax recovery partitions live."""
    return settings.state_dir / "recovery" / flow
