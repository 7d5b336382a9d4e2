"""Training: reproducible to the byte, normalization inside the model, imbalance, stopping."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from offline.evaluate import evaluate
from offline.model import FraudMLP, heavy_tailed_mask
from offline.onnx_export import export_onnx, onnx_sha256
from offline.train import TrainConfig, TrainedModel, TrainingError, train_model
from offline.training_set import TrainingSet
from tests.offline.synthetic import synthetic_training_set

CONFIG = TrainConfig(epochs=6, patience=3)


@pytest.fixture(scope="module")
def ts() -> TrainingSet:
    return synthetic_training_set(3_000, seed=1)


@pytest.fixture(scope="module")
def trained(ts: TrainingSet) -> TrainedModel:
    return train_model(ts, config=CONFIG)


def test_same_data_and_seed_give_byte_identical_onnx(
    ts: TrainingSet, trained: TrainedModel
) -> None:
    again = train_model(ts, config=CONFIG)
    first = export_onnx(trained.model, ts.feature_names)
    second = export_onnx(again.model, ts.feature_names)
    assert onnx_sha256(first) == onnx_sha256(second)
    assert again.history == trained.history


def test_the_seed_changes_the_model(ts: TrainingSet, trained: TrainedModel) -> None:
    other = train_model(ts, config=dataclasses.replace(CONFIG, seed=CONFIG.seed + 1, epochs=1))
    key = "net.0.weight"
    assert not torch.equal(other.model.state_dict()[key], trained.model.state_dict()[key])


def test_training_restores_torch_global_state(ts: TrainingSet) -> None:
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    rng = torch.random.get_rng_state()
    train_model(ts, config=dataclasses.replace(CONFIG, epochs=1))
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic
    assert torch.equal(torch.random.get_rng_state(), rng)


def test_the_model_learns_the_signal(ts: TrainingSet, trained: TrainedModel) -> None:
    x, y = ts.part("test")
    metrics = evaluate(trained.predict(x), y)
    assert metrics.roc_auc > 0.9
    assert metrics.pr_auc > 4 * float(y.mean())


def test_normalization_lives_in_the_model(ts: TrainingSet, trained: TrainedModel) -> None:
    x, _ = ts.part("train")
    names = list(ts.feature_names)
    mask = trained.model.log_mask.numpy()
    assert mask[names.index("amount")]
    assert mask[names.index("card_seconds_since_prev")]
    assert not mask[names.index("is_foreign")]
    assert not mask[names.index("hour_of_day")]
    expected = np.where(mask, np.log1p(np.maximum(x, 0)), x).astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(trained.model.mean.numpy(), expected, rtol=1e-5, atol=1e-5)
    z = trained.model.normalize(torch.from_numpy(x)).numpy()
    varying = x.std(axis=0) > 0
    np.testing.assert_allclose(z.mean(axis=0)[varying], 0.0, atol=0.05)


def test_heavy_tailed_mask_rules() -> None:
    x = np.array([[0.0, -1.0, 500.0, 1.0], [1.0, 200.0, 3.0, 0.0]], dtype=np.float32)
    assert heavy_tailed_mask(x).tolist() == [False, False, True, False]


def test_class_weight_is_negatives_over_positives_and_undone_at_inference(
    ts: TrainingSet, trained: TrainedModel
) -> None:
    _, y = ts.part("train")
    expected = min(float((y == 0).sum() / (y == 1).sum()), CONFIG.max_pos_weight)
    assert trained.pos_weight == pytest.approx(expected)
    assert float(trained.model.logit_offset) == pytest.approx(-np.log(expected), rel=1e-6)
    x, _ = ts.part("val")
    with torch.no_grad():
        raw = torch.sigmoid(trained.model.logits(torch.from_numpy(x))).numpy()
    # The prior correction lowers every probability: the weighted logits overstate fraud.
    assert (trained.predict(x) < raw).all()


def test_early_stopping_keeps_the_best_epoch(ts: TrainingSet) -> None:
    result = train_model(ts, config=dataclasses.replace(CONFIG, epochs=40, patience=2))
    assert len(result.history) < 40
    best = max(result.history, key=lambda r: r.val_pr_auc)
    assert result.best_epoch == best.epoch
    assert len(result.history) <= result.best_epoch + 2
    x, y = ts.part("val")
    with torch.no_grad():
        logits = result.model.logits(torch.from_numpy(x)).numpy()
    assert evaluate(logits, y).pr_auc == pytest.approx(best.val_pr_auc)


def test_a_train_split_without_fraud_is_refused(ts: TrainingSet) -> None:
    y = ts.y.copy()
    y[ts.mask("train")] = 0.0
    with pytest.raises(TrainingError, match=r"train split needs both classes, got 0 positives"):
        train_model(dataclasses.replace(ts, y=y), config=CONFIG)


def test_non_finite_features_are_named(ts: TrainingSet) -> None:
    x = ts.x.copy()
    x[5, ts.feature_names.index("card_amount_std_7d")] = np.nan
    with pytest.raises(TrainingError, match=r"'train'.*\['card_amount_std_7d'\]"):
        train_model(dataclasses.replace(ts, x=x), config=CONFIG)


def test_invalid_config_names_the_field() -> None:
    with pytest.raises(TrainingError, match=r"TrainConfig.dropout: invalid value 1.5"):
        TrainConfig(dropout=1.5)


def test_model_output_is_a_probability_per_row() -> None:
    model = FraudMLP(4, hidden=(8,)).eval()
    out = model(torch.randn(5, 4) * 100)
    assert out.shape == (5,)
    assert ((out >= 0) & (out <= 1)).all()
