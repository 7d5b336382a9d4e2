"""Shadow and canary routing: which model's score is acted on for each event.

Modes (`RolloutConfig.mode`, from the registered model's `rollout_mode` tag):

- `champion`: only the champion scores; it is served for every event.
- `shadow`: the champion is served; the challenger scores every event too, unserved.
- `canary`: a stable hash of the card id puts each card in a bucket in [0, 100); cards
  with bucket < `canary_percent` are served by the challenger, the rest by the champion.
  Both variants score every event (one batch call each), the unserved one marked
  `served=False`, so champion and challenger are always compared on the same traffic.

Every event gets exactly one served score. Without a challenger every mode serves the
champion only.

The bucket is `blake2b(card_id as utf-8, digest_size=8, person=b"skewless-canary")` read
as a big-endian unsigned 64-bit integer, times 100 / 2**64. It is the same in every
process and on every run (unlike Python's `hash()`), so a card always sees the same
variant; raising the percentage only adds cards (those already on the challenger stay).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from serving.errors import ServingError
from serving.runtime import LoadedModel

__all__ = [
    "ModelSet",
    "RolloutConfig",
    "RolloutMode",
    "ScoredVariant",
    "Variant",
    "card_bucket",
]

RolloutMode = Literal["champion", "shadow", "canary"]
Variant = Literal["champion", "challenger"]

_MODES: tuple[str, ...] = get_args(RolloutMode)
_PERSON = b"skewless-canary"
_SCALE = 100.0 / 2.0**64


def card_bucket(card_id: str) -> float:
    """The card's stable canary bucket, uniform in [0, 100)."""
    digest = hashlib.blake2b(card_id.encode("utf-8"), digest_size=8, person=_PERSON).digest()
    return int.from_bytes(digest, "big") * _SCALE


@dataclass(frozen=True, slots=True)
class RolloutConfig:
    """How champion and challenger share traffic (see the module docstring)."""

    mode: RolloutMode = "champion"
    canary_percent: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            msg = f"rollout mode: expected one of {list(_MODES)}, got {self.mode!r}"
            raise ServingError(msg)
        if not math.isfinite(self.canary_percent) or not 0.0 <= self.canary_percent <= 100.0:
            msg = f"canary_percent: expected a number in [0, 100], got {self.canary_percent!r}"
            raise ServingError(msg)

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> RolloutConfig:
        """From the registered-model tags `rollout_mode` and `canary_percent` (or defaults)."""
        mode = tags.get("rollout_mode", "champion").strip() or "champion"
        raw = tags.get("canary_percent", "0").strip() or "0"
        try:
            percent = float(raw)
        except ValueError as exc:
            msg = f"registered-model tag canary_percent: expected a number, got {raw!r}"
            raise ServingError(msg) from exc
        if mode not in _MODES:
            msg = f"registered-model tag rollout_mode: expected one of {list(_MODES)}, got {mode!r}"
            raise ServingError(msg)
        return cls(mode=mode, canary_percent=percent)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True, eq=False)
class ScoredVariant:
    """One variant's scores for a batch; `served[i]` is True where event i acts on this score."""

    model: LoadedModel
    variant: Variant
    scores: npt.NDArray[np.float32]
    decisions: list[str]
    served: npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class ModelSet:
    """The models serving right now and how they share traffic; immutable, swapped whole."""

    champion: LoadedModel
    challenger: LoadedModel | None = None
    rollout: RolloutConfig = field(default_factory=RolloutConfig)

    def __post_init__(self) -> None:
        challenger = self.challenger
        if challenger is None:
            return
        champion = self.champion
        same_definition = champion.definition_version == challenger.definition_version
        if champion.feature_names != challenger.feature_names or not same_definition:
            msg = (
                f"challenger {challenger.name!r} version {challenger.version!r} cannot score "
                f"the champion's vectors: definition {challenger.definition_version!r} with "
                f"{len(challenger.feature_names)} features, champion version "
                f"{champion.version!r} has definition {champion.definition_version!r} with "
                f"{len(champion.feature_names)} features"
            )
            raise ServingError(msg)

    @property
    def effective_mode(self) -> RolloutMode:
        """The rollout mode in force: `champion` whenever there is no challenger."""
        return "champion" if self.challenger is None else self.rollout.mode

    def challenger_served(self, card_ids: Sequence[str]) -> npt.NDArray[np.bool_]:
        """Per event, whether the challenger's score is the served one."""
        if self.effective_mode != "canary":
            return np.zeros(len(card_ids), dtype=np.bool_)
        percent = self.rollout.canary_percent
        return np.fromiter(
            (card_bucket(c) < percent for c in card_ids), dtype=np.bool_, count=len(card_ids)
        )

    def route(self, card_ids: Sequence[str], x: npt.ArrayLike) -> list[ScoredVariant]:
        """Score a batch: the champion first, then the challenger if the mode scores it.

        `card_ids[i]` is the card of row i of `x` [batch, d].
        """
        matrix = np.ascontiguousarray(x, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != len(card_ids):
            msg = (
                f"route: expected {len(card_ids)} feature rows (one per card id), "
                f"got features of shape {list(matrix.shape)}"
            )
            raise ServingError(msg)
        on_challenger = self.challenger_served(card_ids)
        variants = [_scored(self.champion, "champion", matrix, ~on_challenger)]
        if self.challenger is not None and self.effective_mode != "champion":
            variants.append(_scored(self.challenger, "challenger", matrix, on_challenger))
        return variants


def _scored(
    model: LoadedModel, variant: Variant, x: npt.NDArray[np.float32], served: npt.NDArray[np.bool_]
) -> ScoredVariant:
    scores = model.score(x)
    return ScoredVariant(model, variant, scores, model.decide(scores), served)
