"""One Transmit call of the Link service: frames go in through a queue, acks come out on a reader thread."""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import grpc

from protos.diffusec.link.v1 import link_pb2, link_pb2_grpc


class TransmitStream:
    """A bidirectional Transmit stream. ``on_ack(ack)`` runs on the reader thread for every Ack,
    ``on_end()`` once when the call ends (``error`` then holds the RpcError, if it failed)."""

    def __init__(self, stub: link_pb2_grpc.LinkStub, on_ack: Callable[[link_pb2.Ack], None],
                 on_end: Callable[[], None]):
        self._requests: queue.Queue = queue.Queue()
        self.error: grpc.RpcError | None = None
        self.finished = threading.Event()
        self.call = stub.Transmit(self._frames())
        self._on_ack, self._on_end = on_ack, on_end
        self._thread = threading.Thread(target=self._read, name="sender-acks", daemon=True)
        self._thread.start()

    def _frames(self):
        while True:
            frame = self._requests.get()
            if frame is None:
                return
            yield frame

    def _read(self) -> None:
        try:
            for ack in self.call:
                self._on_ack(ack)
        except grpc.RpcError as err:
            self.error = err
        finally:
            self.finished.set()
            self._on_end()

    def send(self, frame: link_pb2.Frame) -> None:
        self._requests.put(frame)

    def close(self, timeout: float = 10.0) -> None:
        """Half-close and wait for the remaining acks."""
        self._requests.put(None)
        self.finished.wait(timeout)

    def cancel(self) -> None:
        """End the call now, without waiting for the remaining acks."""
        self._requests.put(None)
        self.call.cancel()
        self.finished.wait(2.0)
