"""Model scoring: micro-batched vs one event per call, and onnxruntime vs torch eager.

One fraud-sized MLP (d = the fraud feature set's width, hidden 64-32, sigmoid output) is
built in torch, exported to ONNX (`features` [batch, d] -> `score` [batch]) and loaded
through `serving.runtime.LoadedModel` (verified bytes, tuned session, 1 intra-op thread).
torch runs with 1 thread too, in the same process, on the same inputs.

(a) throughput of `LoadedModel.score` over `--events` events, in batches of `--batch`
    (20 passes per repetition) versus one event per call (target: batched >= 10x);
(b) per-call latency at batch 1 and `--batch`: raw onnxruntime `session.run` (the floor),
    `LoadedModel.score`, and torch eager under `inference_mode`.

Every figure is the median of `--reps` repetitions.

    python benchmarks/scoring_models.py --events 25600 --reps 5
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import torch
from _common import median, write_result
from torch import nn

from schemas.features.fraud import FRAUD_FEATURES
from serving.integrity import sha256_hex, verify_onnx
from serving.runtime import LoadedModel, Thresholds

Matrix = npt.NDArray[np.float32]


class _MLP(nn.Module):
    """The fraud MLP's shape: two ReLU layers and a sigmoid, [batch, d] -> [batch]."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x)).squeeze(-1)


def export(module: nn.Module, d: int) -> bytes:
    """ONNX bytes for `module` with a dynamic batch (torch.export-based exporter)."""
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(
        module,
        (torch.zeros(4, d),),
        input_names=["features"],
        output_names=["score"],
        dynamic_shapes={"x": {0: batch}},
        dynamo=True,
        external_data=False,
        verbose=False,
    )
    assert program is not None
    return bytes(program.model_proto.SerializeToString())


def per_call_seconds(call: Callable[[], object], calls: int) -> float:
    """Mean wall seconds of `call` over `calls` calls (after a short warm-up)."""
    for _ in range(min(50, calls)):
        call()
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def throughput(model: LoadedModel, x: Matrix, batch: int, *, passes: int = 1) -> float:
    """Events per second scoring all of `x` `passes` times, in slices of `batch` rows."""
    start = time.perf_counter()
    for _ in range(passes):
        for i in range(0, len(x), batch):
            model.score(x[i : i + batch])
    return passes * len(x) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=25_600)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(1)
    d = len(FRAUD_FEATURES.feature_names)
    module = _MLP(d).eval()
    data = export(module, d)
    verified = verify_onnx(data, expected_sha256=sha256_hex(data), model="bench", version="1")
    model = LoadedModel(
        verified,
        feature_names=FRAUD_FEATURES.feature_names,
        thresholds=Thresholds(review=0.5, decline=0.9),
    )
    options = ort.SessionOptions()  # the floor: a plain session, default options, 1 thread
    options.intra_op_num_threads = 1
    floor = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])

    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (args.events, d)).astype(np.float32)
    with torch.inference_mode():
        torch_scores = module(torch.from_numpy(x[: args.batch])).numpy()
    max_diff = float(np.max(np.abs(model.score(x[: args.batch]) - torch_scores)))

    # (a) micro-batched vs one event per call.
    # Batched passes are ~50x faster: repeat them so a repetition lasts long enough to time.
    batched = median([throughput(model, x, args.batch, passes=20) for _ in range(args.reps)])
    single = median([throughput(model, x, 1) for _ in range(args.reps)])

    # (b) per-call latency, onnxruntime vs torch eager, at batch 1 and `batch`.
    latency: dict[str, dict[str, float]] = {}
    for size, calls in ((1, 5_000), (args.batch, 1_000)):
        xb = x[:size]
        tb = torch.from_numpy(xb)

        def ort_raw(xb: Matrix = xb) -> Any:
            return floor.run(["score"], {"features": xb})

        def loaded_model(xb: Matrix = xb) -> Any:
            return model.score(xb)

        def torch_eager(t: torch.Tensor = tb) -> Any:
            with torch.inference_mode():
                return module(t)

        runners: dict[str, Callable[[], object]] = {
            "ort_raw": ort_raw,
            "loaded_model": loaded_model,
            "torch_eager": torch_eager,
        }
        latency[f"batch_{size}"] = {
            name: median([per_call_seconds(run, calls) for _ in range(args.reps)]) * 1e6
            for name, run in runners.items()
        }

    print(f"scoring models: d={d}, MLP 64-32, 1 thread, {args.reps} reps, median")
    print(f"(a) {args.events} events through LoadedModel.score")
    print(f"    batch {args.batch:>4}: {batched:>12,.0f} events/s")
    print(f"    batch    1: {single:>12,.0f} events/s")
    print(f"    ratio      : {batched / single:>12.1f}x  (target >= 10x)")
    print("(b) per-call latency, microseconds")
    header = ("batch", "ort raw", "LoadedModel", "torch eager", "torch/ort")
    print("    {:>6} {:>10} {:>12} {:>12} {:>10}".format(*header))
    for key, row in latency.items():
        size = key.removeprefix("batch_")
        ratio = row["torch_eager"] / row["loaded_model"]
        print(
            f"    {size:>6} {row['ort_raw']:>10.1f} {row['loaded_model']:>12.1f} "
            f"{row['torch_eager']:>12.1f} {ratio:>9.1f}x"
        )
    print(f"    max |ort - torch| over {args.batch} rows: {max_diff:.2e}")

    path = write_result(
        "scoring_models",
        {
            "config": {
                "events": args.events,
                "batch": args.batch,
                "reps": args.reps,
                "features": d,
                "hidden": [64, 32],
                "threads": 1,
                "onnxruntime": ort.__version__,
                "torch": torch.__version__,
            },
            "throughput_events_per_s": {
                f"batch_{args.batch}": batched,
                "batch_1": single,
                "ratio": batched / single,
                "target_ratio": 10.0,
            },
            "latency_us_per_call": latency,
            "torch_over_ort": {
                key: row["torch_eager"] / row["loaded_model"] for key, row in latency.items()
            },
            "max_abs_diff_ort_vs_torch": max_diff,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
