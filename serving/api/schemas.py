"""The API's request and response shapes, as documented in its OpenAPI spec.

Responses are pydantic models. Request bodies are not: a transaction is validated by the
Avro contract itself (`serving.api.validation`), so its OpenAPI schema is derived from
`Transaction.avsc` (`transaction_json_schema`) rather than written a second time.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.contracts import load_schema
from serving.runtime import Decision

__all__ = [
    "BatchScoreResponse",
    "EntityFreshness",
    "ErrorBody",
    "FeatureResponse",
    "FieldProblem",
    "Freshness",
    "NotFoundBody",
    "ReadyBody",
    "ScoreResponse",
    "TooLargeBody",
    "UnavailableBody",
    "UnservedScore",
    "ValidationErrorBody",
    "batch_json_schema",
    "transaction_json_schema",
]

VariantName = Literal["champion", "challenger"]
_FROZEN = ConfigDict(frozen=True)


class Freshness(BaseModel):
    """How old a stored vector is, in milliseconds, at response time."""

    model_config = _FROZEN

    computed_age_ms: int = Field(description="now - computed_at: time since the stream wrote it")
    event_age_ms: int = Field(description="now - event_time: time since its event happened")


class FeatureResponse(BaseModel):
    """The online vector of one entity: its newest processed event's features."""

    model_config = _FROZEN

    entity: str
    id: str
    event_id: str = Field(description="The event whose vector this is")
    event_time: int = Field(description="That event's time, epoch milliseconds UTC")
    computed_at: int = Field(description="When the stream computed it, epoch milliseconds")
    source_timestamp: int = Field(description="Kafka timestamp of the event, epoch ms")
    definition_version: str
    late: bool
    features: dict[str, float] = Field(description="The entity's view features")
    all_features: dict[str, float] = Field(
        description="The whole vector of that event (request and every view's features)"
    )
    freshness: Freshness


class EntityFreshness(BaseModel):
    """Which stored vector an entity's view features came from, and how old it is."""

    model_config = _FROZEN

    id: str
    event_id: str | None = Field(description="Stored vector's event; null: cold start")
    event_time: int | None = None
    computed_at: int | None = None
    freshness: Freshness | None = Field(description="null for a cold start")


class UnservedScore(BaseModel):
    """The other variant's score when shadow or canary scored the event unserved."""

    model_config = _FROZEN

    model_name: str
    model_version: str
    variant: VariantName
    served: bool = False
    score: float | None = Field(description="null only if the model returned a non-finite score")
    decision: Decision


class ScoreResponse(BaseModel):
    """The served score of one transaction and what it was computed from."""

    model_config = _FROZEN

    event_id: str
    card_id: str
    score: float | None = Field(description="null only if the model returned a non-finite score")
    decision: Decision
    model_name: str
    model_version: str
    variant: VariantName
    served: bool = Field(default=True, description="Always true: this score is acted on")
    unserved: UnservedScore | None = Field(
        default=None, description="The challenger (shadow, canary) or champion scored unserved"
    )
    features_source: Literal["stored", "assembled"] = Field(
        description="stored: the event's own stored vector, bit for bit; assembled: request "
        "features plus each entity's stored view features (see docs/online.md)"
    )
    features_as_of: dict[str, str | None] = Field(
        description="Per entity, the event id of the stored vector used (null: cold start)"
    )
    freshness: dict[str, EntityFreshness]
    definition_version: str
    scored_at: int = Field(description="Wall clock when scored, epoch milliseconds")


class BatchScoreResponse(BaseModel):
    """One result per posted transaction, in order."""

    model_config = _FROZEN

    results: list[ScoreResponse]


class FieldProblem(BaseModel):
    """One reason a request was refused."""

    model_config = _FROZEN

    field: str = Field(description="Dotted path of the field, e.g. transactions[3].amount")
    expected: str
    got: str
    message: str


class ErrorBody(BaseModel):
    """Any error: what went wrong."""

    error: str
    message: str = ""


class ValidationErrorBody(ErrorBody):
    """422: the request does not fit the contract."""

    detail: list[FieldProblem]


class TooLargeBody(ErrorBody):
    """413: the body or the batch is over its limit."""

    limit: int
    got: int | None = None


class NotFoundBody(ErrorBody):
    """404: no such entity vector, entity name or route."""

    entity: str | None = None
    id: str | None = None
    valid_entities: list[str] | None = None


class UnavailableBody(ErrorBody):
    """503: the server cannot answer now (no model, Redis unreachable)."""

    reasons: list[str]


class ReadyBody(BaseModel):
    """/readyz: ready, or the reasons why not."""

    ready: bool
    reasons: list[str] = Field(default_factory=list)
    model_generation: int = 0


_LONG = {"minimum": -(2**63), "maximum": 2**63 - 1}
_MILLIS = {"minimum": -62_135_596_800_000, "maximum": 253_402_300_799_999}  # years 1 to 9999
_PRIMITIVE: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "double": {"type": "number"},
    "float": {"type": "number"},
    "int": {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1},
    "long": {"type": "integer", **_LONG},
    "boolean": {"type": "boolean"},
    "null": {"type": "null"},
}


def _json_type(avro: Any) -> dict[str, Any]:
    if isinstance(avro, str):
        return dict(_PRIMITIVE[avro])
    if isinstance(avro, list):
        branches = [_json_type(b) for b in avro]
        if all(len(b) == 1 and "type" in b for b in branches):
            return {"type": [b["type"] for b in branches]}
        return {"anyOf": branches}
    if avro["type"] == "enum":
        return {"type": "string", "enum": list(avro["symbols"])}
    if avro.get("logicalType") == "timestamp-millis":
        return {
            "anyOf": [
                {"type": "integer", **_MILLIS, "description": "epoch milliseconds UTC"},
                {"type": "string", "format": "date-time", "description": "ISO-8601 with timezone"},
            ]
        }
    return _json_type(avro["type"])


def transaction_json_schema() -> dict[str, Any]:
    """The JSON schema of a posted transaction, derived from `Transaction.avsc`."""
    avro = load_schema("Transaction")
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in avro["fields"]:
        prop = _json_type(field["type"])
        if "doc" in field:
            prop["description"] = field["doc"]
        properties[field["name"]] = prop
        if "default" not in field:
            required.append(field["name"])
    return {
        "title": "Transaction",
        "description": avro.get("doc", ""),
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def batch_json_schema(limit: int) -> dict[str, Any]:
    """The JSON schema of a batch body: `{"transactions": [Transaction, ...]}`."""
    return {
        "title": "TransactionBatch",
        "type": "object",
        "properties": {
            "transactions": {
                "type": "array",
                "items": transaction_json_schema(),
                "minItems": 1,
                "maxItems": limit,
            }
        },
        "required": ["transactions"],
        "additionalProperties": False,
    }
