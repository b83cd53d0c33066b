"""Liveness (issue 17): a frozen peer (SIGSTOP, the connection still open) ends a sender's run within
--retry-timeout, and the give-up says what was delivered; a proxy that dies mid-run and comes back
costs no frame. Real receiver and proxy processes, untrained models."""
from __future__ import annotations

import signal
import time

import pytest
import torch

from link_support import free_port, make_untrained_checkpoints, proxy_service, receiver_service
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


def test_a_proxy_killed_and_restarted_mid_run_loses_no_frame_and_acks_none_twice(tmp_path):
    """SIGKILL the channel proxy after 8 acks and start a new one on the same ports: the sender reconnects,
    re-syncs and resends; every image is sent once as a new frame and acked once."""
    checkpoints = make_untrained_checkpoints(tmp_path / "ckpt")
    r_port, p_port, c_port = free_port(), free_port(), free_port()
    receiver = receiver_service(r_port, checkpoints, tmp_path, "--t-d", "2", "--max-batch", "4").start()
    proxies = [proxy_service(p_port, r_port, c_port, tmp_path, "--snr-db", "20").start()]

    def on_ack(count: int) -> None:
        if len(proxies) == 1 and sender.acked == 8:   # once, with frames in flight
            proxies[0].kill()
            proxies.append(proxy_service(p_port, r_port, c_port, tmp_path, "--snr-db", "20").start())

    try:
        receiver.wait_healthy(f"127.0.0.1:{r_port}")
        proxies[0].wait_healthy(f"127.0.0.1:{p_port}")
        images = torch.randint(0, 256, (48, 3, 32, 32), dtype=torch.uint8)
        options = SenderOptions(window=8, batch=4, ack_timeout_s=1.0, retry_timeout_s=60.0)
        with LinkSender(Pipeline.load("cifar10", checkpoints, ("codec",)), f"127.0.0.1:{p_port}", options,
                        on_ack=on_ack) as sender:
            result = sender.run(images)
        assert len(proxies) == 2 and result.reconnects >= 1 and len(result.syncs) >= 2
        assert [a.frame_id for a in result.acks] == list(range(48))        # each image acked, once
        assert result.frames_sent == 48 and sender.acked == 48
    finally:
        for service in (*proxies, receiver):
            service.stop()
