"""Notice a tailing partition whose broker holds records it does not hand out, and say so.

A live source that gets nothing cannot tell "no traffic" from "the broker stopped serving
me" by itself. The embedded broker (Tansu 0.6, memory storage) does the second: every fetch
below the end of a partition lists every record batch the partition holds, and past 4,000-
6,000 batches its fetches stop being answered while it spins a core (11 ms at 2,000
batches, 3 s at 5,000, none in 20 s at 6,000-7,000: `benchmarks/broker_batches.py`). A
producer lingering 5 ms writes up to 200 batches a second to a partition, so a live run on
the embedded broker stalls within a minute or two, and without a word.

`StallWatch` keeps the time a partition last gave a record. Once it has given none for
`after_s`, it reads the high watermark the broker's last fetch response reported (kept by
librdkafka: no request); if records are waiting past the read position, it logs a warning
naming the partition, both offsets, and the likely cause, at most once per `after_s`. A
caught-up idle partition logs nothing. (Tansu answers a watermark query, ListOffsets,
wrongly: 1 for a partition holding one batch of 20 records; its fetch responses carry the
right one.)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException, TopicPartition

__all__ = ["StallWatch"]

# No NullHandler: with no logging configured (the CLI's workers), Python's last-resort
# handler prints warnings to stderr, where the user running the worker sees them.
_log = logging.getLogger(__name__)

STALL_AFTER_S = 30.0
_HINT = (
    "the embedded broker (Tansu 0.6, memory storage) stops serving a partition once it "
    "holds some 4,000-6,000 record batches; for long live runs set SKEWLESS_KAFKA_BOOTSTRAP "
    "to a Kafka cluster (README, The embedded broker)"
)


class StallWatch:
    """Warns when a partition gets no records while its broker holds newer ones.

    `start` is the offset its consumer was assigned at (a logical offset such as
    `OFFSET_BEGINNING` counts as 0); `high_watermark` replaces the broker query (tests).
    """

    def __init__(
        self,
        consumer: Consumer,
        topic: str,
        partition: int,
        start: int,
        *,
        after_s: float = STALL_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
        high_watermark: Callable[[], int] | None = None,
    ) -> None:
        self._topic, self._partition = topic, partition
        self._after = after_s
        self._clock = clock
        self._high = high_watermark or (lambda: _high_watermark(consumer, topic, partition))
        self._position = max(start, 0)  # the next offset to read (a logical start: 0)
        self._since = clock()  # when the partition last gave a record (or the watch began)
        self._next_check = self._since + after_s
        self._stalled = False

    @property
    def stalled(self) -> bool:
        """Whether the last check found records waiting and none given since."""
        return self._stalled

    def got(self, next_offset: int) -> None:
        """The partition gave records; `next_offset` is the one after the last of them."""
        self._position = next_offset
        self._since = self._clock()
        self._next_check = self._since + self._after
        self._stalled = False

    def idle(self) -> None:
        """A poll gave nothing: check the broker's end of the log, at most every `after_s`."""
        now = self._clock()
        if now < self._next_check:
            return
        self._next_check = now + self._after
        try:
            high = self._high()
        except KafkaException:
            return  # no answer from the consumer: nothing known
        position = self._position
        if high <= position:  # caught up, or no fetch answered yet (a negative offset)
            self._stalled = False
            return
        self._stalled = True
        _log.warning(
            "Kafka topic %r [%d]: the broker holds records up to offset %d but has returned "
            "none from offset %d for %.0f s; %s",
            self._topic,
            self._partition,
            high,
            position,
            now - self._since,
            _HINT,
        )


def _high_watermark(consumer: Consumer, topic: str, partition: int) -> int:
    """The high watermark of the last fetch response (negative before the first)."""
    _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
    return int(high)
