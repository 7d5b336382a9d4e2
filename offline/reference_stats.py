"""Per-feature quantile bins of a training set, and the PSI of new data against them.

The bins of a feature are its previous data version's quantiles: interior edges at the
1/b, ..., (b-1)/b quantiles (duplicates and the maximum dropped, so a 0/1 feature has
two bins), each bin closed on the right: (-inf, e1], (e1, e2], ..., (ek, inf). NaNs are
left out (the null check counts them). PSI = sum over bins of (new - ref) * ln(new / ref),
shares floored at 1e-4 so an empty bin gives a large but finite value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from offline.errors import OfflineError
from offline.training_set import TrainingSet

__all__ = ["PSI_FLOOR", "ColumnBins", "ReferenceStats", "population_stability_index"]

PSI_FLOOR = 1e-4


@dataclass(frozen=True, slots=True)
class ColumnBins:
    """Interior bin edges of one feature and the reference share of each bin."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]

    @classmethod
    def fit(cls, values: np.ndarray, *, bins: int) -> ColumnBins:
        clean = values[~np.isnan(values)].astype(np.float64)
        if clean.size == 0:
            return cls(edges=(), shares=(1.0,))
        quantiles = np.quantile(clean, np.linspace(0.0, 1.0, bins + 1)[1:-1])
        # An edge at the maximum would only open an always-empty top bin.
        edges = tuple(float(e) for e in np.unique(quantiles) if e < clean.max())
        return cls(edges=edges, shares=tuple(float(s) for s in _shares(edges, clean)))


def _shares(edges: tuple[float, ...], values: np.ndarray) -> np.ndarray:
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="left")
    counts = np.bincount(index, minlength=len(edges) + 1)
    return counts / max(int(values.size), 1)


def population_stability_index(reference: ColumnBins, values: np.ndarray) -> float:
    """PSI of `values` against the reference bins (0.0 means the same distribution)."""
    clean = values[~np.isnan(values)].astype(np.float64)
    if clean.size == 0:
        return 0.0
    new = np.maximum(_shares(reference.edges, clean), PSI_FLOOR)
    ref = np.maximum(np.asarray(reference.shares, dtype=np.float64), PSI_FLOOR)
    return float(np.sum((new - ref) * np.log(new / ref)))


@dataclass(frozen=True, slots=True)
class ReferenceStats:
    """Bins per feature of a previous training set, with the data version they came from."""

    columns: Mapping[str, ColumnBins]
    data_version: Mapping[str, int]
    rows: int

    @classmethod
    def from_training_set(cls, ts: TrainingSet, *, bins: int = 10) -> ReferenceStats:
        if bins < 2:
            msg = f"reference stats: bins must be >= 2, got {bins}"
            raise OfflineError(msg)
        columns = {
            name: ColumnBins.fit(np.asarray(ts.x[:, j]), bins=bins)
            for j, name in enumerate(ts.feature_names)
        }
        return cls(columns=columns, data_version=ts.data_version.as_dict(), rows=len(ts))

    def to_json(self) -> str:
        return json.dumps(
            {
                "data_version": dict(self.data_version),
                "rows": self.rows,
                "columns": {
                    name: {"edges": list(b.edges), "shares": list(b.shares)}
                    for name, b in self.columns.items()
                },
            },
            sort_keys=True,
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> ReferenceStats:
        try:
            data: Any = json.loads(text)
            columns = {
                str(name): ColumnBins(
                    edges=tuple(float(e) for e in b["edges"]),
                    shares=tuple(float(s) for s in b["shares"]),
                )
                for name, b in data["columns"].items()
            }
            return cls(
                columns=columns,
                data_version={str(k): int(v) for k, v in data["data_version"].items()},
                rows=int(data["rows"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            msg = (
                "reference stats: expected JSON with 'columns' {name: {edges, shares}}, "
                f"'data_version' and 'rows' ({exc!r})"
            )
            raise OfflineError(msg) from exc
