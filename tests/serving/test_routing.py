"""Routing: one served prediction per event; shadow scores all; canary is a stable card split."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest

from schemas.contracts import codec_for
from schemas.features.vector import FeatureVector
from serving.errors import ServingError
from serving.predictions import Prediction, predict, prediction_decoder
from serving.routing import ModelSet, RolloutConfig, ScoredVariant, card_bucket
from serving.runtime import Decision, LoadedModel
from tests.serving.conftest import D, loaded, mlp_onnx


@pytest.fixture(scope="module")
def champion() -> LoadedModel:
    return loaded(mlp_onnx(seed=21), version="1")


@pytest.fixture(scope="module")
def challenger() -> LoadedModel:
    return loaded(mlp_onnx(seed=22), version="2")


def _batch(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    cards = [f"card-{i}" for i in range(n)]
    return cards, np.random.default_rng(seed).normal(0, 1, (n, D)).astype(np.float32)


def _served_variant(variants: list[ScoredVariant]) -> list[str]:
    """Per event, the variant whose score is served; asserts exactly one is."""
    served = np.stack([v.served for v in variants])
    assert (served.sum(axis=0) == 1).all()
    return [variants[int(i)].variant for i in served.argmax(axis=0)]


def test_bucket_is_blake2b_of_the_utf8_card_id_uniform_in_0_100() -> None:
    digest = hashlib.blake2b(b"card-\xc3\xa9", digest_size=8, person=b"skewless-canary").digest()
    assert card_bucket("card-é") == int.from_bytes(digest, "big") * 100 / 2**64
    buckets = np.array([card_bucket(f"c{i}") for i in range(20_000)])
    assert buckets.min() >= 0.0
    assert buckets.max() < 100.0
    counts, _ = np.histogram(buckets, bins=10, range=(0, 100))
    assert (np.abs(counts - 2_000) < 200).all()


def test_champion_mode_scores_and_serves_the_champion_only(
    champion: LoadedModel, challenger: LoadedModel
) -> None:
    cards, x = _batch(50)
    variants = ModelSet(champion, challenger, RolloutConfig("champion")).route(cards, x)

    assert [v.variant for v in variants] == ["champion"]
    assert variants[0].served.all()
    assert np.array_equal(variants[0].scores, champion.score(x))


def test_shadow_serves_the_champion_and_scores_the_challenger_on_every_event(
    champion: LoadedModel, challenger: LoadedModel
) -> None:
    cards, x = _batch(300)
    variants = ModelSet(champion, challenger, RolloutConfig("shadow")).route(cards, x)

    assert _served_variant(variants) == ["champion"] * 300
    chall = variants[1]
    assert (chall.variant, chall.model.version) == ("challenger", "2")
    assert not chall.served.any()
    assert np.array_equal(chall.scores, challenger.score(x))
    assert chall.decisions == challenger.decide(chall.scores)


def test_canary_serves_about_the_percentage_and_each_card_always_the_same_variant(
    champion: LoadedModel, challenger: LoadedModel
) -> None:
    models = ModelSet(champion, challenger, RolloutConfig("canary", 10.0))
    cards, x = _batch(10_000)

    first = _served_variant(models.route(cards, x))
    share = 100 * first.count("challenger") / len(first)
    assert 8.0 <= share <= 12.0

    order = list(range(len(cards)))
    random.Random(7).shuffle(order)
    again = _served_variant(models.route([cards[i] for i in order], x[order]))
    assert again == [first[i] for i in order]
    canary = models.route(cards, x)
    assert len(canary) == 2  # the unserved variant is scored too, for comparability
    assert np.array_equal(canary[1].scores, challenger.score(x))


def test_raising_the_canary_percentage_keeps_the_cards_already_on_the_challenger(
    champion: LoadedModel, challenger: LoadedModel
) -> None:
    cards, _ = _batch(5_000)
    at_10 = ModelSet(champion, challenger, RolloutConfig("canary", 10.0)).challenger_served(cards)
    at_25 = ModelSet(champion, challenger, RolloutConfig("canary", 25.0)).challenger_served(cards)
    assert (at_25[at_10]).all()
    assert at_25.sum() > at_10.sum()


def test_without_a_challenger_every_mode_serves_the_champion(champion: LoadedModel) -> None:
    cards, x = _batch(20)
    for rollout in (RolloutConfig("shadow"), RolloutConfig("canary", 100.0)):
        variants = ModelSet(champion, None, rollout).route(cards, x)
        assert _served_variant(variants) == ["champion"] * 20


def test_a_challenger_of_another_definition_is_refused(champion: LoadedModel) -> None:
    other = loaded(mlp_onnx(seed=23), version="3", definition_version="def-2")
    with pytest.raises(ServingError, match="challenger 'unit' version '3' cannot score"):
        ModelSet(champion, other, RolloutConfig("shadow"))


def test_rollout_config_from_tags() -> None:
    assert RolloutConfig.from_tags({}) == RolloutConfig("champion", 0.0)
    tags = {"rollout_mode": "canary", "canary_percent": "12.5"}
    assert RolloutConfig.from_tags(tags) == RolloutConfig("canary", 12.5)
    with pytest.raises(ServingError, match="rollout_mode: expected one of"):
        RolloutConfig.from_tags({"rollout_mode": "blue-green"})
    with pytest.raises(ServingError, match="canary_percent: expected a number in"):
        RolloutConfig.from_tags({"rollout_mode": "canary", "canary_percent": "150"})
    with pytest.raises(ServingError, match="canary_percent: expected a number, got 'ten'"):
        RolloutConfig.from_tags({"canary_percent": "ten"})


def test_route_checks_one_row_per_card(champion: LoadedModel) -> None:
    with pytest.raises(ServingError, match="expected 3 feature rows"):
        ModelSet(champion).route(["a", "b", "c"], np.zeros((2, D), dtype=np.float32))


def _vector(i: int, *, version: str = "def-1") -> FeatureVector:
    rng = np.random.default_rng(i)
    return FeatureVector(
        event_id=f"e{i}",
        keys=(f"card-{i % 7}", f"m{i % 3}"),
        event_time=1_767_225_600_000 + i,
        source_timestamp=1_767_225_600_100 + i,
        source_partition=0,
        source_offset=i,
        computed_at=1_767_225_600_200 + i,
        definition_version=version,
        late=False,
        values=tuple(float(v) for v in rng.normal(0, 1, D)),
    )


def test_predict_builds_one_served_prediction_per_event_that_round_trips_avro(
    champion: LoadedModel, challenger: LoadedModel
) -> None:
    vectors = [_vector(i) for i in range(40)]
    models = ModelSet(champion, challenger, RolloutConfig("canary", 50.0))

    predictions = predict(models, vectors, scored_at=1_767_225_601_000)

    assert len(predictions) == 80
    codec = codec_for("Prediction")
    pairs = list(zip(predictions[::2], predictions[1::2], strict=True))
    for vector, pair in zip(vectors, pairs, strict=True):
        assert [p.variant for p in pair] == ["champion", "challenger"]
        assert sum(p.served for p in pair) == 1
        for p in pair:
            assert (p.event_id, p.card_id, p.event_time) == (
                vector.event_id,
                vector.keys[0],
                vector.event_time,
            )
            assert p.source_timestamp == vector.source_timestamp
            assert p.scored_at == 1_767_225_601_000
            assert Prediction.from_avro(codec.decode(codec.encode(p.to_avro()))) == p
            assert prediction_decoder()(codec.encode(p.to_avro())) == p  # the direct reader
    x = np.array([v.values for v in vectors], dtype=np.float32)
    expected = champion.score(x)
    got = np.array([p.score for p in predictions[::2]], dtype=np.float32)
    assert np.array_equal(got, expected)
    assert [p.decision for p in predictions[::2]] == champion.decide(expected)
    assert all(isinstance(p.decision, Decision) for p in predictions)


def test_predict_refuses_vectors_of_another_definition(champion: LoadedModel) -> None:
    with pytest.raises(ServingError, match="event 'e1': feature vector of definition version"):
        predict(ModelSet(champion), [_vector(0), _vector(1, version="def-0")])
    assert predict(ModelSet(champion), []) == []
