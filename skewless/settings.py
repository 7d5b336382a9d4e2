"""One frozen settings model for the whole application.

Read from `SKEWLESS_*` environment variables and an optional `skewless.toml` (path from
`SKEWLESS_CONFIG`, default `./skewless.toml`); environment wins over the file. An endpoint
left unset means "embedded": `skewless up` starts one and records it under `state_dir`.
Rooms never read this model themselves: the CLI hands them the plain values they need.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from schemas.errors import SkewlessError

__all__ = ["Settings", "SettingsError", "Topics", "load_settings", "redact_url"]


class SettingsError(SkewlessError):
    """The configuration is invalid; the message names the setting and what was expected."""


class Topics(BaseModel):
    """Kafka topic names and how they are created when skewless creates them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    transactions: str = "transactions"
    labels: str = "labels"
    features: str = "features"
    predictions: str = "predictions"
    drift: str = "drift"
    dead_letter: str = "dead-letter"
    partitions: int = Field(default=4, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1)
    retention_ms: int = Field(default=7 * 24 * 3600 * 1000, ge=-1)

    def all_names(self) -> list[str]:
        return [
            self.transactions,
            self.labels,
            self.features,
            self.predictions,
            self.drift,
            self.dead_letter,
        ]


class Settings(BaseSettings):
    """Everything a skewless process needs to find its services and data."""

    model_config = SettingsConfigDict(
        env_prefix="SKEWLESS_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    kafka_bootstrap: str | None = None
    kafka_options: dict[str, str] = Field(default_factory=dict)
    kafka_sasl_password: SecretStr | None = None
    schema_registry_url: str | None = None
    schema_registry_options: dict[str, str] = Field(default_factory=dict)
    redis_url: str | None = None
    redis_password: SecretStr | None = None
    mlflow_uri: str | None = None
    data_dir: Path = Path(".skewless/data")
    state_dir: Path = Path(".skewless")
    delta_uri: str | None = None
    delta_storage_options: dict[str, str] = Field(default_factory=dict)
    # How long the feature worker keeps replaced Delta files and old log versions (so
    # how far back time travel reaches) before it deletes them.
    delta_retention_hours: int = Field(default=168, ge=1)
    # How often the feature worker commits to Delta (0: every epoch, 1 s). The epochs
    # between commits only log their rows with recovery on, or keep them buffered without
    # (still exactly once). Every commit on a local filesystem lists the whole log, which
    # keeps the retention's versions: at a commit a second its cost would outgrow the
    # epoch within days (README, What a long run leaves behind).
    delta_commit_seconds: float = Field(default=10.0, ge=0)
    topics: Topics = Field(default_factory=Topics)

    @field_validator("kafka_options", "schema_registry_options", "delta_storage_options")
    @classmethod
    def _string_values(cls, value: dict[str, Any]) -> dict[str, str]:
        return {str(k): str(v) for k, v in value.items()}

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in {"redis", "rediss", "unix"}:
            msg = f"expected a redis://, rediss:// or unix:// URL, got {redact_url(value)!r}"
            raise ValueError(msg)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("SKEWLESS_CONFIG", "skewless.toml"))
        toml = TomlConfigSettingsSource(settings_cls, toml_file=toml_path)
        return (init_settings, env_settings, toml, file_secret_settings)

    @property
    def delta_root(self) -> str:
        """Where the Delta tables live: `delta_uri`, else `<data_dir>/delta`."""
        return self.delta_uri or str(self.data_dir / "delta")

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI: configured, else a sqlite store under `data_dir`."""
        return self.mlflow_uri or f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"

    def kafka_client_config(self, bootstrap: str) -> dict[str, str]:
        """librdkafka options for `bootstrap`: the pass-through options plus secrets."""
        config = {"bootstrap.servers": bootstrap, **self.kafka_options}
        if self.kafka_sasl_password is not None:
            config["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        return config


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and `skewless.toml`, as a `SettingsError` if invalid."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        msg = f"invalid settings ({problems}); environment variables are SKEWLESS_<NAME>"
        raise SettingsError(msg) from exc


def redact_url(url: str) -> str:
    """`url` with any password replaced by `***`, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
