"""Link adaptation for the JPEG + LDPC baseline: which (modulation, code rate) a real link would use at an SNR.

Policy ("adaptive", the default): the mode with the most payload bits per image among those
whose *measured* frame error rate at the SNR is below 10% (:data:`TARGET_FRAME_ERROR_RATE`, the
usual link-adaptation operating point); when no mode reaches it, the most robust mode (a link
still transmits; the receiver then mostly gets nothing). Ties go to the more robust mode.

The thresholds are measured, not assumed: :func:`measure_thresholds` simulates random payloads
through the real link (:mod:`.nr_link`: CRC, 5G NR LDPC, QAM, AWGN, BP) on a 0.5 dB grid, and
the lowest grid SNR from which every higher grid point stays below the target is the mode's
threshold. The tables below were recorded with

    python -m shared.baselines.link_adaptation --channel-symbols 768 --frames 200 > docs/baselines/thresholds-768.json
    python -m shared.baselines.link_adaptation --channel-symbols 196 --frames 200 > docs/baselines/thresholds-196.json

(768: the ``cifar10`` preset; 196: ``fmnist``/``mnist``). Other budgets use the table of the
closest measured budget (the code lengths differ, so the thresholds are approximate there).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np

from .link_modes import MODES, LinkMode
from .nr_link import frame_plan, receive, transmit

TARGET_FRAME_ERROR_RATE = 0.1
GRID_STEP_DB = 0.5

# {channel_symbols: {mode name: lowest SNR (dB per real symbol) with frame error rate < 10%}},
# 200 frames per point, seed 0, 0.5 dB grid, on the 5G NR link (the commands in the module
# docstring; their output is docs/baselines/thresholds-{768,196}.json). A frame error is a failed
# CRC *or* a wrong frame that passed it (undetected): none of the latter at either budget.
MEASURED_THRESHOLDS_DB: dict[int, dict[str, float]] = {
    768: {"qpsk-1/2": 2.0, "qpsk-2/3": 4.0, "qpsk-3/4": 4.5, "qpsk-5/6": 6.0,
          "16qam-1/2": 7.0, "16qam-2/3": 9.5, "16qam-3/4": 10.5, "16qam-5/6": 12.0,
          "64qam-1/2": 11.0, "64qam-2/3": 14.5, "64qam-3/4": 15.5, "64qam-5/6": 17.5},
    196: {"qpsk-1/2": 2.0, "qpsk-2/3": 4.0, "qpsk-3/4": 5.0, "qpsk-5/6": 6.5,
          "16qam-1/2": 7.5, "16qam-2/3": 10.0, "16qam-3/4": 11.0, "16qam-5/6": 12.5,
          "64qam-1/2": 11.5, "64qam-2/3": 14.5, "64qam-3/4": 16.0, "64qam-5/6": 18.0},
}


def noise_variance(snr_db: float) -> float:
    """Noise variance per real symbol at ``snr_db`` (unit signal power), as :func:`shared.channel.awgn`."""
    return 10.0 ** (-snr_db / 10.0)


def measure_frame_error_rate(mode: LinkMode, channel_symbols: int, snr_db: float, frames: int,
                             rng: np.random.Generator) -> dict:
    """Send ``frames`` random payloads at ``snr_db``: {frame_error_rate, undetected (delivered but wrong), ...}."""
    plan = frame_plan(mode, channel_symbols)
    payload = rng.integers(0, 2, (frames, plan.info_bits), dtype=np.uint8)
    symbols = transmit(plan, payload).astype(np.float64)
    received = symbols + rng.normal(0.0, math.sqrt(noise_variance(snr_db)), symbols.shape)
    decoded, delivered = receive(plan, received, noise_variance(snr_db))
    wrong = (decoded != payload).any(axis=1)
    return {"frame_error_rate": float(np.mean(~delivered | wrong)), "undetected": int(np.sum(delivered & wrong)),
            "frames": frames}


def shannon_snr_db(mode: LinkMode) -> float:
    """The SNR (dB) at which a real AWGN channel's capacity 0.5 log2(1 + SNR) equals the mode's bits per real use."""
    return 10.0 * math.log10(2.0 ** (2.0 * mode.spectral_efficiency) - 1.0)


def measure_threshold(mode: LinkMode, channel_symbols: int, frames: int = 200, seed: int = 0,
                      target: float = TARGET_FRAME_ERROR_RATE, step_db: float = GRID_STEP_DB) -> tuple[float, list[dict]]:
    """(threshold dB, the measured points): walk down the grid from well above the Shannon limit until the target fails."""
    rng = np.random.default_rng([seed, channel_symbols, MODES.index(mode)])
    snr = math.ceil((shannon_snr_db(mode) + 8.0) / step_db) * step_db
    points = []
    while True:                                   # make sure the walk starts where the mode works
        point = {"snr_db": snr, **measure_frame_error_rate(mode, channel_symbols, snr, frames, rng)}
        points.append(point)
        if point["frame_error_rate"] < target:
            break
        snr += 4.0
    threshold = snr
    while True:
        snr -= step_db
        point = {"snr_db": snr, **measure_frame_error_rate(mode, channel_symbols, snr, frames, rng)}
        points.append(point)
        if point["frame_error_rate"] >= target:
            return threshold, points
        threshold = snr


def measure_thresholds(channel_symbols: int, frames: int = 200, seed: int = 0) -> dict:
    """Thresholds of every mode at this budget, with the measured points (the recorded tables come from this)."""
    out = {}
    for mode in MODES:
        start = time.time()
        threshold, points = measure_threshold(mode, channel_symbols, frames, seed)
        out[mode.name] = {"threshold_db": threshold, "info_bits_per_image": frame_plan(mode, channel_symbols).info_bits,
                          "shannon_snr_db": round(shannon_snr_db(mode), 2), "points": points,
                          "wall_s": round(time.time() - start, 1)}
    return out


def thresholds_for(channel_symbols: int) -> tuple[int, dict[str, float]]:
    """(the measured budget used, its thresholds): the exact budget, else the closest measured one."""
    if not MEASURED_THRESHOLDS_DB:
        raise RuntimeError("no measured link-adaptation thresholds recorded")
    nearest = min(MEASURED_THRESHOLDS_DB, key=lambda measured: (abs(measured - channel_symbols), measured))
    return nearest, MEASURED_THRESHOLDS_DB[nearest]


def choose_mode(snr_db: float, channel_symbols: int, thresholds: dict[str, float] | None = None) -> LinkMode:
    """The adaptive policy (module docstring): most payload bits among modes whose threshold <= ``snr_db``."""
    if not math.isfinite(snr_db):
        raise ValueError(f"SNR must be a finite number of dB, got {snr_db!r}")
    table = thresholds if thresholds is not None else thresholds_for(channel_symbols)[1]
    modes = [LinkMode.parse(name) for name in table]
    robust = min(modes, key=lambda m: table[m.name])
    eligible = [m for m in modes if table[m.name] <= snr_db]
    if not eligible:
        return robust
    return max(eligible, key=lambda m: (frame_plan(m, channel_symbols).info_bits, -table[m.name]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Measure the frame-error-rate thresholds of every link mode.")
    parser.add_argument("--channel-symbols", type=int, required=True, help="real channel symbols per image")
    parser.add_argument("--frames", type=int, default=200, help="random frames per SNR point")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    results = measure_thresholds(args.channel_symbols, args.frames, args.seed)
    print(json.dumps({"channel_symbols": args.channel_symbols, "frames": args.frames, "seed": args.seed,
                      "target_frame_error_rate": TARGET_FRAME_ERROR_RATE, "modes": results}))
    print({name: r["threshold_db"] for name, r in results.items()}, file=sys.stderr)   # the table, at a glance


if __name__ == "__main__":
    main()
