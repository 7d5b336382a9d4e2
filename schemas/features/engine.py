"""A sequential, in-process feature engine: the same kernels, one state dict per view.

The dataflow in `streams/` runs these kernels inside keyed Bytewax steps; this engine runs
them in a plain loop. Tests use it as the dataflow's twin, and the online path uses it to
compute a vector from stored state. It is not a second implementation: both call
`ViewKernel.apply` and `RequestKernel.compute`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from schemas.features.definition import FeatureSet
from schemas.features.kernels import ViewKernel, WindowState
from schemas.features.request import RequestKernel
from schemas.records import Transaction

__all__ = ["CompiledFeatureSet", "LocalEngine"]


class CompiledFeatureSet:
    """A feature set's kernels: one `ViewKernel` per view and the request kernel."""

    def __init__(self, feature_set: FeatureSet) -> None:
        self.feature_set = feature_set
        self.version = feature_set.version
        self.request = RequestKernel(feature_set.request_features)
        self.views = tuple(ViewKernel(v) for v in feature_set.views)
        self.key_fields = tuple(v.entity.key_field for v in feature_set.views)

    def view_index(self, name: str) -> int:
        for i, kernel in enumerate(self.views):
            if kernel.view.name == name:
                return i
        msg = f"no view {name!r} in feature set {self.feature_set.name!r}"
        raise KeyError(msg)


@dataclass
class LocalEngine:
    """Feature vectors for a sequence of events, in processing order."""

    compiled: CompiledFeatureSet
    states: list[dict[str, WindowState]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.states:
            self.states = [{} for _ in self.compiled.views]

    def compute(self, event: Transaction) -> tuple[tuple[float, ...], bool]:
        """Values of `event` in vector order and whether any view found it late."""
        values = list(self.compiled.request.compute(event))
        late = False
        for kernel, states in zip(self.compiled.views, self.states, strict=True):
            key = getattr(event, kernel.view.entity.key_field)
            state = states.get(key)
            if state is None:
                state = states[key] = kernel.new_state()
            view_values, view_late = kernel.apply(state, event.event_time, kernel.extract(event))
            values.extend(view_values)
            late = late or view_late
        return tuple(values), late

    def run(self, events: Iterable[Transaction]) -> Iterator[tuple[tuple[float, ...], bool]]:
        for event in events:
            yield self.compute(event)
