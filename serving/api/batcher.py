"""A micro-batcher: concurrent requests' items coalesce into one call on a worker thread.

Requests `submit` items from the event loop and await their results. One background task
takes the queued items and calls `process(items)` on a dedicated worker thread, so one
onnxruntime call scores the whole batch while the event loop keeps accepting requests.

A batch is flushed when `max_size` items are queued, or when the oldest queued item has
waited `max_wait_s` — whichever comes first. One batch is in flight at a time; items
arriving meanwhile form the next batch, so under load batches grow by themselves and at
low load an item waits at most `max_wait_s` plus the batch in flight.

`process` returns one result per item, in order. If it raises, every item of that batch
gets the exception. An item whose request went away (cancelled) is dropped before its
batch is formed. After `stop()` (or before `start()`), `submit` raises `BatcherClosed`.

>>> batcher = MicroBatcher(lambda xs: [x * 2 for x in xs], max_size=64, max_wait_s=0.002)
>>> async def main() -> list[int]:
...     await batcher.start()
...     try:
...         return await batcher.submit([1, 2, 3])
...     finally:
...         await batcher.stop()
>>> asyncio.run(main())
[2, 4, 6]
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

from serving.errors import ServingError

__all__ = ["BatcherClosed", "MicroBatcher"]

T = TypeVar("T")
R = TypeVar("R")


class BatcherClosed(ServingError):  # noqa: N818 - names the condition
    """The batcher is not running (not started yet, or stopped)."""


class MicroBatcher(Generic[T, R]):
    """Coalesces concurrent submissions into batched `process` calls (see the module doc).

    `on_batch(size, seconds)` is called after each batch with its size and the wall
    seconds `process` took (for metrics).
    """

    def __init__(
        self,
        process: Callable[[list[T]], list[R]],
        *,
        max_size: int,
        max_wait_s: float,
        on_batch: Callable[[int, float], None] | None = None,
        name: str = "micro-batcher",
    ) -> None:
        if max_size < 1 or max_wait_s < 0:
            msg = (
                f"{name}: expected max_size >= 1 and max_wait_s >= 0, "
                f"got {max_size!r} and {max_wait_s!r}"
            )
            raise ServingError(msg)
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self.name = name
        self._process = process
        self._on_batch = on_batch
        self._pending: deque[tuple[T, asyncio.Future[R], float]] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start the batching task on the running event loop (idempotent)."""
        if self.running:
            return
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Stop batching; queued and in-flight items fail with `BatcherClosed`."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        closed = BatcherClosed(f"{self.name} stopped before the item was processed")
        while self._pending:
            _, future, _ = self._pending.popleft()
            if not future.done():
                future.set_exception(closed)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def submit(self, items: Sequence[T]) -> list[R]:
        """Queue `items` and return their results, in order, once their batches ran."""
        if not self.running or self._wakeup is None:
            msg = f"{self.name} is not running: the app has not started or is shutting down"
            raise BatcherClosed(msg)
        loop = asyncio.get_running_loop()
        now = loop.time()
        futures: list[asyncio.Future[R]] = []
        for item in items:
            future: asyncio.Future[R] = loop.create_future()
            self._pending.append((item, future, now))
            futures.append(future)
        self._wakeup.set()
        if len(futures) == 1:
            return [await futures[0]]
        try:
            await asyncio.wait(futures)
        except asyncio.CancelledError:
            for future in futures:
                future.cancel()
            raise
        errors = [f.exception() for f in futures]  # retrieve every one: no "never retrieved"
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first
        return [f.result() for f in futures]

    async def _run(self) -> None:
        try:
            await self._loop()
        except Exception as exc:  # a bug here must fail the waiting requests, not hang them
            while self._pending:
                _, future, _ = self._pending.popleft()
                if not future.done():
                    future.set_exception(exc)
            raise

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        wakeup = self._wakeup
        assert wakeup is not None  # set by start()
        while True:
            if not self._pending:
                wakeup.clear()
                await wakeup.wait()
                continue
            await self._fill(loop, wakeup)
            batch: list[tuple[T, asyncio.Future[R]]] = []
            while self._pending and len(batch) < self.max_size:
                item, future, _ = self._pending.popleft()
                if not future.done():  # a cancelled request's item is not scored
                    batch.append((item, future))
            if batch:
                await self._dispatch(loop, batch)

    async def _fill(self, loop: asyncio.AbstractEventLoop, wakeup: asyncio.Event) -> None:
        """Wait until `max_size` items are queued or the oldest has waited `max_wait_s`."""
        while len(self._pending) < self.max_size:
            deadline = self._pending[0][2] + self.max_wait_s
            if deadline <= loop.time():
                return
            wakeup.clear()
            timer = loop.call_at(deadline, wakeup.set)
            try:
                await wakeup.wait()
            finally:
                timer.cancel()

    async def _dispatch(
        self, loop: asyncio.AbstractEventLoop, batch: list[tuple[T, asyncio.Future[R]]]
    ) -> None:
        items = [item for item, _ in batch]
        started = time.perf_counter()
        try:
            results = await loop.run_in_executor(self._executor, self._process, items)
            if len(results) != len(items):
                msg = f"{self.name}: process returned {len(results)} results for {len(items)} items"
                raise ServingError(msg)
        except asyncio.CancelledError:
            closed = BatcherClosed(f"{self.name} stopped while the item was processed")
            for _, future in batch:
                if not future.done():
                    future.set_exception(closed)
            raise
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
        if self._on_batch is not None:
            self._on_batch(len(items), time.perf_counter() - started)
