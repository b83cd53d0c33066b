"""A delay line: items come out in due-time order, each no earlier than its delay allows.

The forwarding path of one Transmit stream: the reader puts frames in with their delay (0 when
there is no ``delay`` impairment), the upstream request iterator takes them out. Jitter may
reorder frames, as on a real network.
"""
from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Generic, Iterator, TypeVar

T = TypeVar("T")


class DelayLine(Generic[T]):
    def __init__(self) -> None:
        self._heap: list = []
        self._order = itertools.count()
        self._closed = False
        self._cancelled = False
        self._cond = threading.Condition()

    def put(self, item: T, delay_s: float = 0.0) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay_s, next(self._order), item))
            self._cond.notify()

    def close(self) -> None:
        """No more items: iteration ends once the queued ones are out."""
        with self._cond:
            self._closed = True
            self._cond.notify()

    def cancel(self) -> None:
        """End iteration now, dropping what is queued."""
        with self._cond:
            self._cancelled = True
            self._cond.notify()

    def __iter__(self) -> Iterator[T]:
        while True:
            with self._cond:
                while True:
                    if self._cancelled:
                        return
                    if self._heap:
                        wait = self._heap[0][0] - time.monotonic()
                        if wait <= 0:
                            item = heapq.heappop(self._heap)[2]
                            break
                        self._cond.wait(wait)
                    elif self._closed:
                        return
                    else:
                        self._cond.wait()
            yield item
