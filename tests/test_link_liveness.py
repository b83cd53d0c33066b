"""Liveness (issue 17): a frozen peer (SIGSTOP, the connection still open) ends a sender's run within
--retry-timeout, and the give-up says what was delivered. A real receiver process, untrained models."""
from __future__ import annotations

import signal
import time

import pytest
import torch

from link_support import free_port, make_untrained_checkpoints, receiver_service
from sender.link import LinkFailed, LinkSender, SenderOptions
from shared.pipeline import Pipeline

RETRY_TIMEOUT_S = 6.0


def test_a_frozen_receiver_is_given_up_on_within_the_retry_timeout(tmp_path):
    checkpoints = make_untrained_checkpoints(tmp_path / "ckpt")
    port = free_port()
    receiver = receiver_service(port, checkpoints, tmp_path, "--t-d", "2", "--max-batch", "4").start()
    frozen_at: list[float] = []

    def on_ack(count: int) -> None:
        if not frozen_at:   # the first ack: freeze the receiver with frames in flight
            receiver.proc.send_signal(signal.SIGSTOP)
            frozen_at.append(time.monotonic())

    try:
        receiver.wait_healthy(f"127.0.0.1:{port}")
        images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
        options = SenderOptions(window=8, batch=4, retry_timeout_s=RETRY_TIMEOUT_S, sync_timeout_s=1.0)
        with LinkSender(Pipeline.load("cifar10", checkpoints, ("codec",)), f"127.0.0.1:{port}", options,
                        on_ack=on_ack) as sender:
            with pytest.raises(LinkFailed, match="no progress") as err:
                sender.run(images)
            gave_up_after = time.monotonic() - frozen_at[0]
            acked = sender.acked
        assert gave_up_after <= RETRY_TIMEOUT_S + 2.0, (gave_up_after, str(err.value))
        assert 1 <= acked < 64 and sender.result.frames_sent > acked
    finally:
        if receiver.proc and receiver.proc.poll() is None:
            receiver.proc.send_signal(signal.SIGCONT)
        receiver.stop()
