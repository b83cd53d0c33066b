"""Micro-batching: frames that arrive close together share one model call.

One worker takes the first waiting item, then keeps collecting until it has ``max_batch`` items or
no new item has come for ``max_wait_ms`` (a quiet gap, not a total deadline: a sender's burst of
frames arrives over several milliseconds through a proxy, and cutting it at a fixed deadline
split it into a small batch and a remainder, each paying the full chain of network calls). Items
that queue up while a batch runs form the next batch at once, so under load batches fill up; a
lone frame waits at most ``max_wait_ms``, a burst at most ``max_batch`` x ``max_wait_ms``.

The worker is a thread of its own by default. A service can instead run :meth:`run` on its main
thread (``start=False``): torch's OpenMP pool belongs to the thread that made it, and the same
batches ran 10-15 % slower from a second thread on the 2-core machines here.
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Callable, Generic, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_STOP = object()

# Frames per micro-batch and the quiet gap that closes one: the defaults of the batcher, the
# receiver engine and `diffusec-receiver serve` (senders keep batches full with a window of twice this).
MAX_BATCH = 32
MAX_WAIT_MS = 5.0


class MicroBatcher(Generic[T, R]):
    """``process(items) -> results`` (same length and order), run on batches in a worker thread."""

    def __init__(self, process: Callable[[Sequence[T]], Sequence[R]], max_batch: int = MAX_BATCH,
                 max_wait_ms: float = MAX_WAIT_MS, name: str = "micro-batcher", start: bool = True):
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError(f"need max_batch >= 1 and max_wait_ms >= 0, got {max_batch}, {max_wait_ms}")
        self.process, self.max_batch, self.max_wait_s = process, max_batch, max_wait_ms / 1000.0
        self.batches = 0          # batches run
        self.items = 0            # items processed
        self.largest = 0          # largest batch seen
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        if start:
            self._thread = threading.Thread(target=self.run, name=name, daemon=True)
            self._thread.start()

    def submit(self, item: T, future: Future | None = None) -> Future:
        """Queue ``item``; its result (or exception) arrives on the returned future."""
        future = future if future is not None else Future()
        self._queue.put((item, future))
        return future

    def close(self, timeout: float | None = 5.0) -> None:
        """Finish the queued items, then stop the worker (waits for its thread, if it has one)."""
        self._queue.put(_STOP)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _collect(self) -> tuple[list, bool]:
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch, stop = [first], False
        while len(batch) < self.max_batch:
            try:  # the gap restarts with every arrival
                item = self._queue.get(timeout=self.max_wait_s) if self.max_wait_s > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                stop = True
                break
            batch.append(item)
        return batch, stop

    def run(self) -> None:
        """Process batches until :meth:`close` (the worker's loop; call it yourself if ``start=False``)."""
        stop = False
        while not stop:
            batch, stop = self._collect()
            if not batch:
                continue
            live = [(item, f) for item, f in batch if f.set_running_or_notify_cancel()]
            if not live:
                continue
            items, futures = [item for item, _ in live], [f for _, f in live]
            try:
                results = self.process(items)
                if len(results) != len(items):
                    raise RuntimeError(f"batch of {len(items)} items gave {len(results)} results")
            except BaseException as err:  # noqa: BLE001 - every waiting frame must hear about it
                for future in futures:
                    future.set_exception(err)
                continue
            self.batches += 1
            self.items += len(items)
            self.largest = max(self.largest, len(items))
            for future, result in zip(futures, results):
                future.set_result(result)
