"""Training-time reference distributions for drift monitoring (`reference.json`).

Per feature, and for the model score, the reference holds bin `edges` and the training
split's `proportions` per bin. Interior edges are the training data's deciles (for
`bins=10`), deduplicated, wrapped in `-inf` and `+inf`; **bin i holds
`edges[i] < v <= edges[i+1]`** (numpy: `np.searchsorted(edges, v, side="left") - 1`), the
convention of `offline.reference_stats`. A 0/1 flag gets the bins `<= 0`, `(0, 1]` and
`> 1` (empty in training), or just `<= 0` and `> 0` when under a tenth of rows are 1.
The serving drift monitor bins live values the same way and computes
PSI = Σ (live - ref) · ln(live / ref) per bin (smoothing empty bins is its choice).

Infinite edges are written the way Python's `json` writes them (`-Infinity`,
`Infinity`), which `json.loads` reads back as floats. Layout::

    {"format": "skewless-reference/1", "bins": 10, "rows": 2100,
     "bin_rule": "edges[i] < v <= edges[i+1]",
     "features": {"amount": {"edges": [-Infinity, 12.5, ..., Infinity],
                             "proportions": [0.1, ...]}, ...},
     "score": {"edges": [...], "proportions": [...]}}
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from offline.errors import OfflineError

__all__ = ["REFERENCE_FORMAT", "assign_bins", "reference_bins", "reference_json"]

REFERENCE_FORMAT = "skewless-reference/1"


def _edges(values: npt.NDArray[Any], bins: int) -> list[float]:
    quantiles = np.quantile(values.astype(np.float64), np.arange(1, bins) / bins)
    interior = np.unique(quantiles)
    return [-np.inf, *(float(v) for v in interior), np.inf]


def assign_bins(values: npt.NDArray[Any], edges: Sequence[float]) -> npt.NDArray[np.int64]:
    """Bin index of each value: i where `edges[i] < v <= edges[i+1]`."""
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="left") - 1
    return np.asarray(np.clip(idx, 0, len(edges) - 2), dtype=np.int64)


def _distribution(values: npt.NDArray[Any], bins: int) -> dict[str, list[float]]:
    edges = _edges(values, bins)
    counts = np.bincount(assign_bins(values, edges), minlength=len(edges) - 1)
    return {"edges": edges, "proportions": [float(c) / len(values) for c in counts]}


def reference_bins(
    x: npt.NDArray[Any],
    scores: npt.NDArray[Any],
    feature_names: Sequence[str],
    bins: int = 10,
) -> dict[str, Any]:
    """Reference edges and proportions per feature (columns of `x`) and for `scores`."""
    if x.ndim != 2 or x.shape[1] != len(feature_names) or scores.shape != (x.shape[0],):
        msg = (
            f"reference_bins: expected x [n, {len(feature_names)}] and scores [n], "
            f"got {x.shape} and {scores.shape}"
        )
        raise OfflineError(msg)
    if x.shape[0] == 0 or bins < 2:
        msg = f"reference_bins: needs rows and bins >= 2, got {x.shape[0]} rows, {bins} bins"
        raise OfflineError(msg)
    bad = [name for j, name in enumerate(feature_names) if not np.isfinite(x[:, j]).all()]
    if bad or not np.isfinite(scores).all():
        msg = f"reference_bins: non-finite values in {bad or ['score']}"
        raise OfflineError(msg)
    return {
        "format": REFERENCE_FORMAT,
        "bins": bins,
        "rows": int(x.shape[0]),
        "bin_rule": "edges[i] < v <= edges[i+1]",
        "features": {name: _distribution(x[:, j], bins) for j, name in enumerate(feature_names)},
        "score": _distribution(scores, bins),
    }


def reference_json(reference: dict[str, Any]) -> str:
    """The reference as stable JSON text (sorted keys; infinite edges as `Infinity`)."""
    return json.dumps(reference, sort_keys=True, indent=1) + "\n"
