"""A token bucket on the monotonic clock: pace a loop at `rate` operations per second."""

from __future__ import annotations

import time
from collections.abc import Callable

from streams.generator.errors import GeneratorError

__all__ = ["MIN_SLEEP_S", "TokenBucket"]

MIN_SLEEP_S = 0.001


class TokenBucket:
    """Allows `rate` takes per second on average and bursts of up to `burst` takes.

    `clock` and `sleep` default to `time.monotonic` and `time.sleep`; tests pass fakes.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate > 0:
            msg = f"rate must be > 0 events/s, got {rate!r}"
            raise GeneratorError(msg)
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 100)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last = clock()

    def take(self) -> None:
        """Take one token, sleeping until one is available.

        A sleep waits until the bucket holds `MIN_SLEEP_S` worth of tokens (at least one,
        at most `burst`), so a fast rate is paced in short bursts rather than with one
        sleep per take: at 5,000/s, sleeping per take cost 16% of a core in system calls.
        """
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens < 1.0:
            wanted = max(1.0, min(self.burst, MIN_SLEEP_S * self.rate))
            self._sleep((wanted - self._tokens) / self.rate)
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
        self._tokens -= 1.0
