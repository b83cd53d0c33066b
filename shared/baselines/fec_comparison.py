"""The two digital links of the baseline side by side: 802.16e QC-LDPC (written here, BP from the ``ldpc``
package) against 5G NR LDPC + QAM from Sionna (:mod:`shared.baselines.nr_link`), under AWGN.

For each mode and SNR the same random payloads (seeded) go through each link: block error rate
(frames not delivered, or delivered wrong), undetected errors (delivered wrong), payload bits per
image and the milliseconds per image of transmit + receive. Recorded in docs/baselines.md with

    python -m shared.baselines.fec_comparison --frames 200 --json > docs/baselines/fec-comparison.json
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from .digital_link import LinkMode
from .jpeg_ldpc import FEC_LINKS as LINKS

# (mode, SNRs in dB): each mode's waterfall on a 0.5 dB grid around its 802.16e threshold
# (link_adaptation.MEASURED_THRESHOLDS_DB at 768 symbols).
GRID = {"qpsk-1/2": (0.0, 0.5, 1.0, 1.5, 2.0), "16qam-1/2": (5.5, 6.0, 6.5, 7.0, 7.5),
        "16qam-3/4": (9.0, 9.5, 10.0, 10.5, 11.0), "64qam-2/3": (12.5, 13.0, 13.5, 14.0, 14.5),
        "64qam-5/6": (16.0, 16.5, 17.0, 17.5, 18.0)}
LINKS = {"802.16e": (digital_link.frame_plan, digital_link.transmit, digital_link.receive),
         "5g-nr": (nr_link.NrFramePlan, nr_link.transmit, nr_link.receive)}


def measure_point(link: str, mode: LinkMode, channel_symbols: int, snr_db: float, frames: int, seed: int) -> dict:
    """``frames`` random payloads through ``link`` at ``snr_db`` (AWGN per real symbol, seeded)."""
    make_plan, transmit, receive = LINKS[link]
    plan = make_plan(mode, channel_symbols)
    rng = np.random.default_rng([seed, int(snr_db * 100)])
    payload = rng.integers(0, 2, (frames, plan.info_bits), dtype=np.uint8)
    noise_variance = 10.0 ** (-snr_db / 10.0)
    start = time.perf_counter()
    symbols = transmit(plan, payload)
    received = symbols + rng.normal(0.0, math.sqrt(noise_variance), symbols.shape).astype(np.float32)
    decoded, delivered = receive(plan, received, noise_variance)
    ms_per_image = (time.perf_counter() - start) * 1000.0 / frames
    wrong = (decoded != payload).any(axis=1)
    return {"link": link, "mode": mode.name, "snr_db": snr_db, "frames": frames, "info_bits": plan.info_bits,
            "block_error_rate": float(np.mean(~delivered | wrong)), "undetected": int(np.sum(delivered & wrong)),
            "ms_per_image": round(ms_per_image, 3)}


def compare(frames: int = 200, channel_symbols: int = 768, seed: int = 0) -> list[dict]:
    """Every (mode, SNR) of GRID through both links, one torch thread (as the evaluations run)."""
    torch.set_num_threads(1)
    rows = []
    for name, snrs in GRID.items():
        for snr_db in snrs:
            for link in LINKS:
                rows.append(measure_point(link, LinkMode.parse(name), channel_symbols, snr_db, frames, seed))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=200, help="Frames per (mode, SNR, link).")
    parser.add_argument("--channel-symbols", type=int, default=768, help="Real symbols per image (cifar10: 768).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="Print one JSON list instead of a table.")
    args = parser.parse_args(argv)
    rows = compare(args.frames, args.channel_symbols, args.seed)
    if args.json:
        print(json.dumps(rows))
        return
    for row in rows:
        print(f"{row['mode']:10s} {row['snr_db']:5.1f} dB {row['link']:8s} BLER {row['block_error_rate']:.3f} "
              f"undetected {row['undetected']} bits {row['info_bits']} {row['ms_per_image']:.2f} ms/image")


if __name__ == "__main__":
    main()
