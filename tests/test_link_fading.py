"""A live channel switch (issue 18): while one sender run goes on, `diffusec-proxy channel set` turns the
channel from AWGN to Rayleigh block fading and back; the coherent receiver equalises, and the sender's
accuracy and SSIM drop under fading and come back. Real receiver and proxy processes, the shipped models."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from link_support import ENV, REPO_ROOT, free_port, proxy_service, receiver_service
from protos.wire import bytes_to_image
from sender.link import LinkSender, SenderOptions
from shared.checkpoints import default_checkpoint_dir
from shared.data.sample import load_sample
from shared.losses import ssim01
from shared.pipeline import Pipeline

SHIPPED = default_checkpoint_dir("cifar10")
IMAGES_PER_PHASE = 24


def _set_channel(control: str, kind: str) -> None:
    subprocess.run([sys.executable, "-m", "channel_proxy.cli", "--control", control, "channel", "set", kind],
                   check=True, cwd=REPO_ROOT, env=ENV, capture_output=True, timeout=60)


def _phase_figures(acks, images: torch.Tensor, labels: torch.Tensor, phase: int) -> tuple[float, float]:
    """(accuracy, mean SSIM) of the acks of images [phase * K, (phase + 1) * K)."""
    span = range(phase * IMAGES_PER_PHASE, (phase + 1) * IMAGES_PER_PHASE)
    correct = sum(int(acks[i].predicted_class == int(labels[i])) for i in span)
    received = torch.stack([bytes_to_image(acks[i].image, acks[i].image_shape) for i in span])
    ssim = ssim01(images[list(span)].float().div(255.0), received, per_image=True).mean().item()
    return correct / IMAGES_PER_PHASE, ssim


@pytest.mark.skipif(not (SHIPPED / "codec.pt").exists(), reason="no shipped cifar10 checkpoints")
def test_switching_the_proxy_to_rayleigh_and_back_moves_the_senders_accuracy_and_ssim(tmp_path):
    r_port, p_port, c_port = free_port(), free_port(), free_port()
    control = f"127.0.0.1:{c_port}"
    receiver = receiver_service(r_port, SHIPPED, tmp_path, "--t-d", "2", "--max-batch", "1", "--equaliser", "zf")
    proxy = proxy_service(p_port, r_port, c_port, tmp_path, "--snr-db", "3")
    sample = load_sample("cifar10")
    # The same images in each phase (frame ids, hence noise draws, differ): AWGN, Rayleigh, AWGN. The
    # sample is in class order: every (len / K)-th image spreads them over the classes.
    chosen = torch.arange(IMAGES_PER_PHASE) * (len(sample.labels) // IMAGES_PER_PHASE)
    images, labels = sample.images[chosen].repeat(3, 1, 1, 1), sample.labels[chosen].repeat(3)
    switches = {IMAGES_PER_PHASE: "rayleigh", 2 * IMAGES_PER_PHASE: "awgn"}

    def on_ack(count: int) -> None:
        # One frame in flight (window 1), and this runs before the next is sent: each phase is clean.
        if sender.acked in switches:
            _set_channel(control, switches[sender.acked])

    try:
        receiver.start().wait_healthy(f"127.0.0.1:{r_port}")
        proxy.start().wait_healthy(f"127.0.0.1:{p_port}")
        # A generous ack timeout: on a loaded machine a round trip can pass the 5 s default and resend
        # a frame, which this test (one frame in flight, phases switched on acks) must not see.
        options = SenderOptions(window=1, batch=1, ack_timeout_s=60.0)
        with LinkSender(Pipeline.load("cifar10", SHIPPED, ("codec",)), f"127.0.0.1:{p_port}", options,
                        on_ack=on_ack) as sender:
            result = sender.run(images, labels)
    finally:
        proxy.stop()
        receiver.stop()
    assert result.frames_resent == 0 and all(a is not None for a in result.acks)
    (acc_1, ssim_1), (acc_faded, ssim_faded), (acc_2, ssim_2) = (_phase_figures(result.acks, images, labels, p)
                                                                 for p in range(3))
    print(f"AWGN {acc_1:.3f}/{ssim_1:.3f}, Rayleigh {acc_faded:.3f}/{ssim_faded:.3f}, AWGN {acc_2:.3f}/{ssim_2:.3f}")
    assert ssim_faded < min(ssim_1, ssim_2) - 0.05
    assert acc_faded < min(acc_1, acc_2)
    assert abs(ssim_1 - ssim_2) < 0.03
