"""The compiled build (setup.py) computes what its source says, bit for bit.

`make` compiles the workers' hot modules with mypyc. Each property here runs a compiled
module and the same file loaded as plain Python side by side over random input; where a
module is not compiled, its property is skipped (the rest of the suite tests whichever is
installed). mypyc once divided two ints by converting each to a float first, which the
window means caught (`kernels._ratio`).
"""

from __future__ import annotations

import ast
import struct
from datetime import timedelta
from functools import cache
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import astuple

from schemas import records_avro
from schemas.features import (
    Aggregation,
    Entity,
    FeatureSet,
    FeatureVector,
    FeatureView,
    kernels,
    online,
    request,
    vector_avro,
)
from schemas.features.fraud import FRAUD_FEATURES
from schemas.records import Prediction, Transaction
from skewless.native import ROOT, compiled_modules
from tests.native import source_module
from tests.schemas.body_cases import codecs
from tests.schemas.test_feature_kernels import COUNTED_FROMS, LATENESS_MIN, MCCS, OFFSETS
from tests.schemas.test_prediction_avro import predictions
from tests.schemas.test_records_avro import transactions
from tests.schemas.vector_cases import fs_and_vectors

_T0 = 1_767_225_600_000


@cache
def _source(module: ModuleType) -> ModuleType:
    """`module` as plain Python; skips the test where it is not compiled."""
    if module.__name__ not in compiled_modules():
        pytest.skip(f"{module.__name__} is not compiled here")
    return source_module(module.__name__)


def _bits(value: Any) -> Any:
    """`value` with every float as its bytes: -0.0 and NaN payloads compare exactly."""
    if isinstance(value, float):
        return struct.pack("<d", value)
    if isinstance(value, tuple | list):
        return [_bits(v) for v in value]
    return value


# -- window kernels ---------------------------------------------------------------------

_WINDOWS = [timedelta(minutes=m) for m in (10, 60, 240)]
_VIEW_AGGREGATIONS = (
    *(Aggregation(f"count_{i}", "count", w) for i, w in enumerate(_WINDOWS)),
    *(
        Aggregation(f"{fn}_{i}", fn, w, source="amount")  # type: ignore[arg-type]
        for fn in ("sum", "min", "max", "mean", "std", "zscore", "last")
        for i, w in enumerate(_WINDOWS)
    ),
    *(
        Aggregation(f"distinct_{i}", "count_distinct", w, source="mcc")
        for i, w in enumerate(_WINDOWS)
    ),
    Aggregation("since", "seconds_since_previous", _WINDOWS[1]),
)
_AMOUNTS = st.one_of(
    st.sampled_from([0.0, -0.0, 0.1, 7.5, 1e9, 2.0**60, 5e-324]),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.floats(allow_nan=False, allow_infinity=False),  # exact sums far past 2**53
    st.integers(-(2**70), 2**70),
)


@settings(max_examples=150, deadline=None)
@given(
    events=st.lists(st.tuples(OFFSETS, _AMOUNTS, MCCS), min_size=1, max_size=150),
    lateness_min=LATENESS_MIN,
    counted_from=COUNTED_FROMS,
)
def test_window_kernels_compiled_equal_their_source(
    events: list[tuple[int, float | int, str]], lateness_min: int, counted_from: int
) -> None:
    source = _source(kernels)
    view = FeatureView(
        name="card",
        entity=Entity("card", "card_id"),
        aggregations=_VIEW_AGGREGATIONS,
        allowed_lateness=timedelta(minutes=lateness_min),
    )
    compiled_kernel, source_kernel = kernels.ViewKernel(view), source.ViewKernel(view)
    compiled_kernel.counted_from = source_kernel.counted_from = counted_from
    compiled_state, source_state = compiled_kernel.new_state(), source_kernel.new_state()
    assert compiled_kernel.sources == ("amount", "mcc")
    for offset, amount, mcc in events:
        values = (amount, mcc)
        got = compiled_kernel.apply(compiled_state, _T0 + offset, values)
        want = source_kernel.apply(source_state, _T0 + offset, values)
        assert _bits(got) == _bits(want), (offset, amount, mcc)
    assert _bits(compiled_state.times) == _bits(source_state.times)
    assert _bits(compiled_state.columns) == _bits(source_state.columns)


# -- request features, online hash, Avro ------------------------------------------------


@given(transactions)
def test_request_features_compiled_equal_their_source(txn: Transaction) -> None:
    features = FRAUD_FEATURES.request_features
    got = request.RequestKernel(features).compute(txn)
    want = _source(request).RequestKernel(features).compute(txn)
    assert _bits(got) == _bits(want)
    assert [type(v) for v in got] == [float] * len(got)


@given(fs_and_vectors)
def test_vector_encodings_compiled_equal_their_source(
    case: tuple[FeatureSet, FeatureVector],
) -> None:
    feature_set, vector = case
    assert online.encode_hash(vector) == _source(online).encode_hash(vector)
    body = vector_avro.FeatureVectorWriter(feature_set).body(vector)
    assert body == _source(vector_avro).FeatureVectorWriter(feature_set).body(vector)
    got = vector_avro.FeatureVectorReader(feature_set).read(body)
    want = _source(vector_avro).FeatureVectorReader(feature_set).read(body)
    assert _bits(astuple(got)) == _bits(astuple(want))


@given(transactions)
def test_transaction_bodies_compiled_equal_their_source(txn: Transaction) -> None:
    body = codecs("Transaction")[0].encode(txn.to_avro())[10:]  # the single-object producer's
    got = records_avro.TransactionReader().read(body)
    want = _source(records_avro).TransactionReader().read(body)
    assert _bits(astuple(got)) == _bits(astuple(want))
    assert [type(v) for v in astuple(got)] == [type(v) for v in astuple(want)]
    assert records_avro.TransactionWriter().body(txn) == body
    assert _source(records_avro).TransactionWriter().body(txn) == body


@given(predictions)
def test_prediction_bodies_compiled_equal_their_source(prediction: Prediction) -> None:
    body = records_avro.PredictionWriter().body(prediction)
    assert body == _source(records_avro).PredictionWriter().body(prediction)
    got = records_avro.PredictionReader().read(body)
    want = _source(records_avro).PredictionReader().read(body)
    assert _bits(astuple(got)) == _bits(astuple(want))


def test_the_properties_cover_every_module_setup_compiles() -> None:
    tree = ast.parse((ROOT / "setup.py").read_text())
    paths = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "COMPILED"
    )
    named = {path.removesuffix(".py").replace("/", ".") for path in paths}
    covered = {m.__name__ for m in (kernels, request, online, vector_avro, records_avro)}
    covered.add("schemas._avro_binary")  # the primitives of the two Avro modules
    assert named == covered
    assert set(compiled_modules()) <= named
