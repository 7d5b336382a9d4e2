"""The scoring dataflow: micro-batched ONNX scoring of feature vectors, predictions, drift."""

from streams.scoring.flow import ScoringConfig, build_scoring_flow, scoring_step_ids
from streams.scoring.metrics import ScoringMetrics
from streams.scoring.microbatch import BatchScorer, DriftBatch

__all__ = [
    "BatchScorer",
    "DriftBatch",
    "ScoringConfig",
    "ScoringMetrics",
    "build_scoring_flow",
    "scoring_step_ids",
]
