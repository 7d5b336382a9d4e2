"""Topic creation and broker checks against a real broker."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource

from streams.kafka_admin import KafkaAdminError, TopicSpec, create_topics, wait_for_broker
from tests.kafka_helpers import consume_all

pytestmark = pytest.mark.integration

CONFIG = {"retention.ms": "3600000", "cleanup.policy": "delete"}


def _topic_configs(kafka_config: dict[str, str], topic: str) -> dict[str, str]:
    admin = AdminClient({**kafka_config})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(timeout=10)
    return {name: entry.value for name, entry in entries.items()}


def test_creates_topics_with_partitions_and_configs(kafka_config: dict[str, str]) -> None:
    names = [f"admin-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    specs = [TopicSpec(names[0], 3, 1, CONFIG), TopicSpec(names[1], 1, 1, CONFIG)]

    created = create_topics(kafka_config, specs, timeout_s=15)

    assert created == names
    topics = AdminClient({**kafka_config}).list_topics(timeout=10).topics
    assert len(topics[names[0]].partitions) == 3
    assert len(topics[names[1]].partitions) == 1
    configs = _topic_configs(kafka_config, names[0])
    assert configs["retention.ms"] == "3600000"
    assert configs["cleanup.policy"] == "delete"


def test_existing_topics_are_fine_and_not_reported_created(
    kafka_config: dict[str, str], make_topic: Callable[..., str]
) -> None:
    existing = make_topic("exists", partitions=2)
    fresh = f"fresh-{uuid.uuid4().hex[:8]}"

    created = create_topics(
        kafka_config, [TopicSpec(existing, 2, 1, CONFIG), TopicSpec(fresh, 2, 1, CONFIG)]
    )

    assert created == [fresh]


def test_created_topic_is_immediately_usable_on_every_partition(
    kafka_config: dict[str, str], make_topic: Callable[..., str]
) -> None:
    topic = make_topic("usable", partitions=4)
    producer = Producer({**kafka_config, "enable.idempotence": True})
    for i in range(200):
        producer.produce(topic, value=str(i).encode(), partition=i % 4)
    assert producer.flush(15) == 0

    messages = consume_all(kafka_config, topic)

    assert sorted(int(m.value() or b"") for m in messages) == list(range(200))
    assert {m.partition() for m in messages} == {0, 1, 2, 3}


def test_wait_for_broker_names_the_bootstrap_when_nothing_answers() -> None:
    with pytest.raises(KafkaAdminError, match=r"127\.0\.0\.1:1'.*did not answer"):
        wait_for_broker({"bootstrap.servers": "127.0.0.1:1"}, timeout_s=0.5)


@pytest.mark.parametrize(
    ("name", "partitions", "replication"), [("", 1, 1), ("x", 0, 1), ("x", 1, 0)]
)
def test_topic_spec_rejects_impossible_values(name: str, partitions: int, replication: int) -> None:
    with pytest.raises(KafkaAdminError):
        TopicSpec(name, partitions, replication)
