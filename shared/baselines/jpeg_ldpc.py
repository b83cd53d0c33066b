"""The conventional baseline "JPEG + LDPC" (DiffuSeC paper, section VI-A), on the same channel as the semantic link.

    x [0,1] -> 8-bit image -> JPEG scan at the best quality that fits (jpeg_scan) -> CRC + 5G NR
      LDPC + QAM (nr_link, Sionna) -> AWGN at snr_db (shared.channel.awgn, the semantic link's
      channel) -> LLRs -> BP decoding, CRC check -> JPEG decoding -> received image -> classifier

Every image costs exactly ``channel_symbols`` real channel uses (768 for ``cifar10``, the
semantic codec's latent length), at unit average power per real symbol, with an SNR of S dB
meaning noise variance 10^(-S/10) per real symbol, as for the semantic link.

The mode (modulation, code rate) is fixed (``link_mode="16qam-3/4"``) or chosen per SNR by the
measured link-adaptation policy (``link_mode="adaptive"``, :mod:`.link_adaptation`).

Failure rule. An image is *not delivered* when (a) no ladder quality fits the payload budget
(the sender cannot send it), (b) the frame's CRC still fails after the BP iteration cap (the
receiver knows the frame is bad), or (c) the decoded payload is not a decodable JPEG scan. The receiver then has no image data, and its image is
mid-grey, every pixel 128/255 on every channel: what a JPEG decoder outputs when the
entropy-coded data is missing (all DCT coefficients zero, DC level 128), and a choice that uses
no knowledge of the data set (the training-set mean would leak statistics a receiver of a
failed frame does not have). A wrong frame that passes the CRC (an undetected error, about 2^-24
per bad frame) is decoded as whatever JPEG makes of it: a real receiver would display that too.
:class:`LinkTally` counts the three cases so the evaluation can report a decode-failure rate.

The classifier is a parameter (:func:`run` takes ``classify``): the ``jpeg-ldpc`` system uses the
receiver classifier; an adversarially trained one can be passed the same way.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..channel import awgn
from ..fading import AWGN, LinkChannel, transmit_with_csi
from .link_modes import LinkMode
from .jpeg_scan import JpegDecodeError, pack_image, unpack_image, used_bits
from .link_adaptation import choose_mode, noise_variance, thresholds_for
from .nr_link import frame_plan, receive, transmit

ADAPTIVE = "adaptive"
FALLBACK_PIXEL = 128.0 / 255.0      # the mid-grey image of a receiver without data (module docstring)


@dataclass
class LinkTally:
    """Counts over the images sent through the link (add one batch at a time; shared across batches)."""

    images: int = 0
    delivered: int = 0
    not_sent: int = 0               # (a) no quality fits the payload budget
    link_failures: int = 0          # (b) the CRC failed after BP
    jpeg_failures: int = 0          # (c) the decoded payload is not a decodable scan
    quality_sum: int = 0            # over delivered images
    payload_bits_sum: int = 0       # frame bits the JPEG data used (quality index + length + scan), over sent images
    modes: Counter = field(default_factory=Counter)
    policy: str | None = None
    plan: dict | None = None        # the last batch's frame plan
    thresholds_measured_at: int | None = None   # adaptive: the budget the thresholds were measured at

    @property
    def decode_failure_rate(self) -> float | None:
        """Fraction of images the receiver did not get (all three failure cases), in [0, 1]."""
        return (self.images - self.delivered) / self.images if self.images else None

    def to_dict(self) -> dict:
        sent = self.images - self.not_sent
        rate = (lambda count: round(count / self.images, 4)) if self.images else (lambda count: None)
        return {"policy": self.policy, "modes": dict(self.modes), **(self.plan or {}),
                "thresholds_measured_at_channel_symbols": self.thresholds_measured_at,
                "images": self.images, "delivered": self.delivered,
                "decode_failure_rate": rate(self.images - self.delivered), "not_sent_rate": rate(self.not_sent),
                "link_failure_rate": rate(self.link_failures), "jpeg_failure_rate": rate(self.jpeg_failures),
                "mean_jpeg_quality": round(self.quality_sum / self.delivered, 2) if self.delivered else None,
                "mean_payload_bits": round(self.payload_bits_sum / sent, 1) if sent else None,
                "failure_image": "mid-grey (128/255 on every channel)"}


def resolve_mode(link_mode: str, snr_db: float, channel_symbols: int) -> LinkMode:
    """``"adaptive"`` -> the policy's mode at ``snr_db``; else the named mode, e.g. ``"16qam-3/4"``."""
    if link_mode == ADAPTIVE:
        return choose_mode(snr_db, channel_symbols)
    return LinkMode.parse(link_mode)


def _to_uint8(pixels01: torch.Tensor) -> np.ndarray:
    """[B, C, H, W] in [0, 1] -> uint8 (the sender's images are 8-bit files; attacked float images are rounded)."""
    return pixels01.detach().float().clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8).cpu().numpy()


def transmit_images(pixels01: torch.Tensor, snr_db: float, channel_symbols: int, link_mode: str = ADAPTIVE,
                    generator: torch.Generator | None = None, tally: LinkTally | None = None,
                    channel: LinkChannel = AWGN) -> torch.Tensor:
    """Images [B, C, H, W] in [0, 1] through JPEG + LDPC + QAM + AWGN -> what the receiver has, [B, C, H, W] in [0, 1] (CPU).

    The channel noise comes from ``generator`` (seeded: a run repeats). Undelivered images are
    mid-grey (module docstring); ``tally`` (optional) accumulates the counts. ``channel``: fading
    (shared.fading) before the AWGN, zf-equalised, the LLRs from each symbol's noise after it; the
    mode is chosen at the average SNR.
    """
    if pixels01.ndim != 4 or pixels01.shape[1] not in (1, 3):
        raise ValueError(f"expected images [B, C, H, W] with C = 1 or 3, got shape {tuple(pixels01.shape)}")
    if not math.isfinite(float(snr_db)):
        raise ValueError(f"SNR must be a finite number of dB, got {snr_db!r}")
    snr_db = float(snr_db)
    mode = resolve_mode(link_mode, snr_db, channel_symbols)
    plan = frame_plan(mode, channel_symbols)
    images = _to_uint8(pixels01)
    frames, sent, payload_bits = _pack_images(images, plan.info_bits)
    # Every row goes through the channel (an unsent image's frame is idle and ignored), so the
    # noise drawn for image i does not depend on whether the others fit.
    symbols = torch.from_numpy(transmit(plan, frames))
    if channel.kind == "awgn":
        received_symbols, variance = awgn(symbols, snr_db, generator).numpy(), noise_variance(snr_db)
    else:
        received_symbols, variance = (t.numpy() for t in transmit_with_csi(symbols, snr_db, channel, generator))
    payloads, delivered_frames = receive(plan, received_symbols, variance)
    received, counts = _unpack_images(payloads, delivered_frames, sent, images.shape)
    if tally is not None:
        tally.images += len(images)
        tally.not_sent += int(len(images) - sent.sum())
        tally.payload_bits_sum += payload_bits
        for name, count in counts.items():
            setattr(tally, name, getattr(tally, name) + count)
        tally.modes[mode.name] += len(images)
        tally.policy = link_mode if link_mode == ADAPTIVE else "fixed"
        tally.plan = plan.to_dict()
        if link_mode == ADAPTIVE:
            tally.thresholds_measured_at = thresholds_for(channel_symbols)[0]
    return torch.from_numpy(received)


def _pack_images(images: np.ndarray, info_bits: int) -> tuple[np.ndarray, np.ndarray, int]:
    """uint8 images [B, C, H, W] -> frames [B, info_bits] (0 rows for images that do not fit), which
    were sent [B] (bool), and the frame bits their JPEG data used in all."""
    frames = np.zeros((len(images), info_bits), dtype=np.uint8)
    sent = np.zeros(len(images), dtype=bool)
    payload_bits = 0
    for i, image in enumerate(images):
        packed = pack_image(image, info_bits)
        if packed is not None:
            frames[i], _ = packed
            sent[i] = True
            payload_bits += used_bits(frames[i])
    return frames, sent, payload_bits


def _unpack_images(payloads, delivered_frames, sent: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, dict]:
    """Decoded payloads -> images [B, C, H, W] float32 in [0, 1] (mid-grey where undelivered) and the
    counts of delivered images, link failures, JPEG failures and the sum of delivered JPEG qualities."""
    _, channels, height, width = shape
    received = np.full(shape, FALLBACK_PIXEL, dtype=np.float32)
    counts = {"delivered": 0, "link_failures": 0, "jpeg_failures": 0, "quality_sum": 0}
    for i in np.flatnonzero(sent):
        if not delivered_frames[i]:
            counts["link_failures"] += 1
            continue
        try:
            image, quality = unpack_image(payloads[i], channels, height, width)
        except JpegDecodeError:
            counts["jpeg_failures"] += 1
            continue
        received[i] = image.astype(np.float32) / 255.0
        counts["delivered"] += 1
        counts["quality_sum"] += quality
    return received, counts


def run(pixels01: torch.Tensor, snr_db: float, classify: Callable[[torch.Tensor], torch.Tensor], channel_symbols: int,
        link_mode: str = ADAPTIVE, generator: torch.Generator | None = None, tally: LinkTally | None = None,
        device: torch.device | str = "cpu", channel: LinkChannel = AWGN) -> tuple[torch.Tensor, torch.Tensor]:
    """The system: (received [B, C, H, W] in [0, 1], logits [B, K]) with ``classify`` the receiver's classifier."""
    received = transmit_images(pixels01, snr_db, channel_symbols, link_mode, generator, tally, channel).to(device)
    return received, classify(received)

