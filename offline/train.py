"""Reproducible training of the fraud MLP on a point-in-time training set.

Same training set + same `TrainConfig` → the same weights, bit for bit, hence the same
ONNX bytes: the torch RNG is seeded (and restored afterwards), the batch order comes
from a seeded numpy `Generator`, deterministic algorithms are on and torch runs on one
thread while training (the caller's settings are restored). Class imbalance is handled
with `pos_weight` in `BCEWithLogitsLoss` (negatives / positives, capped); the model
undoes the resulting prior shift at inference, so its score stays a probability.
Early stopping watches PR-AUC on the time-ordered validation split (loss when the
validation split has no fraud) and restores the best epoch's weights.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from offline.errors import OfflineError
from offline.evaluate import pr_auc
from offline.model import FraudMLP

__all__ = [
    "EpochRecord",
    "TrainConfig",
    "TrainedModel",
    "TrainingData",
    "TrainingError",
    "deterministic_torch",
    "train_model",
]

Split = Literal["train", "val", "test"]


class TrainingError(OfflineError):
    """Training cannot start or went wrong (empty split, one class, non-finite values)."""


class TrainingData(Protocol):
    """What training needs from a `offline.training_set.TrainingSet`."""

    @property
    def feature_names(self) -> tuple[str, ...]: ...

    def part(self, name: Split) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]: ...


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Hyperparameters; every field is logged as an MLflow run parameter."""

    seed: int = 7
    epochs: int = 30
    batch_size: int = 512
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    hidden: tuple[int, ...] = (64, 32)
    dropout: float = 0.1
    patience: int = 5
    max_pos_weight: float = 50.0
    log_transform: bool = True

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "learning_rate": self.learning_rate > 0,
            "hidden": bool(self.hidden) and min(self.hidden) >= 1,
            "dropout": 0.0 <= self.dropout < 1.0,
            "patience": self.patience >= 1,
            "max_pos_weight": self.max_pos_weight >= 1.0,
        }
        for name, ok in checks.items():
            if not ok:
                msg = f"TrainConfig.{name}: invalid value {getattr(self, name)!r}"
                raise TrainingError(msg)

    def to_params(self) -> dict[str, str]:
        """Flat string parameters for tracking."""
        return {k: str(list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True, slots=True)
class EpochRecord:
    """One epoch: mean training loss, validation loss and PR-AUC."""

    epoch: int
    train_loss: float
    val_loss: float
    val_pr_auc: float


@dataclass(frozen=True, slots=True)
class TrainedModel:
    """The trained model (eval mode, best epoch's weights) and how it got there."""

    model: FraudMLP
    config: TrainConfig
    feature_names: tuple[str, ...]
    best_epoch: int
    pos_weight: float
    monitor: str
    history: tuple[EpochRecord, ...] = field(default=())

    def predict(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Fraud probabilities [n] from raw feature vectors [n, d] (torch, no grad)."""
        with torch.no_grad():
            out = self.model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        return np.asarray(out.numpy(), dtype=np.float32)


@contextmanager
def deterministic_torch(seed: int) -> Iterator[None]:
    """Seeded torch RNG, deterministic algorithms, one thread; all restored on exit."""
    threads = torch.get_num_threads()
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(1)
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
            torch.set_num_threads(threads)


def _checked_part(
    data: TrainingData, split: Split
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    x, y = data.part(split)
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.ascontiguousarray(y, dtype=np.float32)
    d = len(data.feature_names)
    if x.ndim != 2 or x.shape[1] != d or y.shape != (x.shape[0],):
        msg = (
            f"training set split {split!r}: expected x [n, {d}] and y [n], "
            f"got x {x.shape} and y {y.shape}"
        )
        raise TrainingError(msg)
    if x.shape[0] == 0:
        msg = f"training set split {split!r} is empty; widen the time range or the cutoff"
        raise TrainingError(msg)
    bad = ~np.isfinite(x).all(axis=0)
    if bad.any():
        names = [data.feature_names[i] for i in np.flatnonzero(bad)]
        msg = f"training set split {split!r}: non-finite values in features {names}"
        raise TrainingError(msg)
    if not np.isin(y, (0.0, 1.0)).all():
        msg = f"training set split {split!r}: labels must be 0/1, got {np.unique(y)[:5]}"
        raise TrainingError(msg)
    return x, y


def _state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def train_model(data: TrainingData, *, config: TrainConfig = TrainConfig()) -> TrainedModel:
    """Train the MLP on the train split, stopping early on the validation split."""
    x_train, y_train = _checked_part(data, "train")
    x_val, y_val = _checked_part(data, "val")
    positives = float(y_train.sum())
    if positives == 0 or positives == y_train.size:
        msg = (
            f"train split needs both classes, got {int(positives)} positives in {y_train.size} rows"
        )
        raise TrainingError(msg)
    pos_weight = min((y_train.size - positives) / positives, config.max_pos_weight)
    monitor = "val_pr_auc" if y_val.any() else "val_loss"
    with deterministic_torch(config.seed):
        model = FraudMLP(len(data.feature_names), hidden=config.hidden, dropout=config.dropout)
        model.fit_normalization(x_train, log_transform=config.log_transform)
        loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight))
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        order = np.random.default_rng(config.seed)
        xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
        xv, yv = torch.from_numpy(x_val), torch.from_numpy(y_val)
        history: list[EpochRecord] = []
        best: tuple[float, int, dict[str, torch.Tensor]] | None = None
        for epoch in range(1, config.epochs + 1):
            model.train()
            perm = torch.from_numpy(order.permutation(xt.shape[0]))
            total = 0.0
            for start in range(0, xt.shape[0], config.batch_size):
                idx = perm[start : start + config.batch_size]
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model.logits(xt[idx]), yt[idx])
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * idx.shape[0]
            model.eval()
            with torch.no_grad():
                val_logits = model.logits(xv)
                val_loss = float(loss_fn(val_logits, yv))
            val_ap = pr_auc(val_logits.numpy(), y_val)
            if not math.isfinite(val_loss):
                msg = f"training diverged at epoch {epoch}: validation loss {val_loss!r}"
                raise TrainingError(msg)
            history.append(EpochRecord(epoch, total / xt.shape[0], val_loss, val_ap))
            score = val_ap if monitor == "val_pr_auc" else -val_loss
            if best is None or score > best[0]:
                best = (score, epoch, _state_copy(model))
            elif epoch - best[1] >= config.patience:
                break
        if best is None:  # unreachable: TrainConfig requires epochs >= 1
            msg = f"no epoch ran (epochs={config.epochs!r})"
            raise TrainingError(msg)
        model.load_state_dict(best[2])
        model.set_pos_weight(pos_weight)
        model.eval()
    return TrainedModel(
        model=model,
        config=config,
        feature_names=tuple(data.feature_names),
        best_epoch=best[1],
        pos_weight=pos_weight,
        monitor=monitor,
        history=tuple(history),
    )
