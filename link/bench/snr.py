"""``diffusec bench snr``: the receiver's pilot SNR estimate, through the channel proxy, against the set SNR.

For each SNR in the sweep (dB), the proxy's AWGN is set through ChannelControl and ``repeats``
Syncs are sent with fresh pilots of ``pilot_length`` unit-power symbols; each SyncReply's
``snr_db`` is the receiver's estimate. Errors are |estimate - set| in dB. With 1024 BPSK pilot
symbols the estimate's standard deviation is about 10 log10(1 + sqrt(2/1024)) = 0.19 dB.

With a fading channel (``fading``: a rayleigh or rician Impairment message) the bench adds it to the
proxy for the sweep and removes it after; the receiver must be a coherent one (it says so by asking
for frame pilots in its SyncReply), which estimates the *average* SNR: the noise power, whatever the
fade of each pilot. Target there: 1 dB (issue 18).
"""
from __future__ import annotations

import statistics
import uuid

import grpc

from protos.diffusec.link.v1 import link_pb2, link_pb2_grpc
from protos.wire import GRPC_OPTIONS, symbols_to_bytes
from shared.channel import pilot_sequence
from shared.stats import rounded

from .common import machine

TARGET_MEAN_ABS_ERROR_DB = 0.5
TARGET_MEAN_ABS_ERROR_FADING_DB = 1.0
BENCH_FADING_NAME = "bench-snr-fading"


def _measure(stub, session: str, first: int, repeats: int, pilot_length: int, preset: str, timeout_s: float,
             coherent: bool) -> list[float]:
    """``repeats`` Syncs numbered from ``first`` -> the receiver's SNR estimates (dB). ``coherent``: the
    receiver must be a coherent one (BenchError otherwise)."""
    measured = []
    for sequence in range(first, first + repeats):
        pilot = symbols_to_bytes(pilot_sequence(session, sequence, pilot_length))
        reply = stub.Sync(link_pb2.SyncRequest(session=session, sequence=sequence, pilot=pilot, preset=preset),
                          timeout=timeout_s)
        if coherent and not reply.frame_pilot_blocks:
            raise BenchError("the receiver is not coherent (it asks for no frame pilots), so it reads a faded pilot "
                             "as noise: start it with `--equaliser zf`")
        measured.append(reply.snr_db)
    return measured


def _row(snr_db: float, measured: list[float], errors: list[float]) -> dict:
    return {"snr_db": snr_db, "measured_mean_db": rounded(statistics.fmean(measured), 3),
            "measured_std_db": rounded(statistics.pstdev(measured), 3),
            "mean_abs_error_db": rounded(statistics.fmean(errors), 3), "max_abs_error_db": rounded(max(errors), 3)}


class BenchError(RuntimeError):
    """The benchmark cannot give a meaningful number (e.g. impairments are active)."""


def sweep(low_db: float = -6.0, high_db: float = 18.0, step_db: float = 1.0) -> list[float]:
    """low, low + step, ..., high (inclusive), in dB."""
    count = int(round((high_db - low_db) / step_db)) + 1
    return [round(low_db + i * step_db, 6) for i in range(count)]


def run(link: str, control: str, snrs_db: list[float], repeats: int = 20, pilot_length: int = 1024,
        preset: str = "", timeout_s: float = 10.0, fading: link_pb2.Impairment | None = None) -> dict:
    """Sweep the proxy at ``control`` over ``snrs_db``, syncing through ``link``; restores the SNR after.

    ``fading``: a fading Impairment added for the sweep (and removed after); None: AWGN alone.
    """
    session = f"bench-snr-{uuid.uuid4().hex[:8]}"
    rows, errors = [], []
    with grpc.insecure_channel(link, options=GRPC_OPTIONS) as a, grpc.insecure_channel(control, options=GRPC_OPTIONS) as b:
        stub, ctl = link_pb2_grpc.LinkStub(a), link_pb2_grpc.ChannelControlStub(b)
        before = ctl.Stats(link_pb2.StatsRequest(), timeout=timeout_s)
        if before.impairments or before.channel != "awgn" or before.channel_scheduled:
            raise BenchError(f"the proxy at {control} has {before.impairments} impairment(s) and channel "
                             f"{before.channel!r}; the SNR bench sets the channel itself: run `diffusec-proxy "
                             f"--control {control} attack clear` and `channel set awgn` first")
        if fading is not None:
            fading = link_pb2.Impairment(name=BENCH_FADING_NAME, **{fading.WhichOneof("kind"): getattr(
                fading, fading.WhichOneof("kind"))})   # our own name, removed after
            ctl.AddImpairment(link_pb2.AddImpairmentRequest(impairment=fading), timeout=timeout_s)
        sequence = 0
        try:
            for snr_db in snrs_db:
                ctl.SetSnr(link_pb2.SetSnrRequest(snr_db=snr_db), timeout=timeout_s)
                measured = _measure(stub, session, sequence, repeats, pilot_length, preset, timeout_s, fading is not None)
                sequence += repeats
                point_errors = [abs(m - snr_db) for m in measured]
                errors += point_errors
                rows.append(_row(snr_db, measured, point_errors))
            channel = ctl.Stats(link_pb2.StatsRequest(), timeout=timeout_s).channel
        finally:
            if before.snr_scheduled:
                note = "the proxy followed an SNR schedule before the bench; it is now constant"
            else:
                note = None
            if fading is not None:
                ctl.RemoveImpairment(link_pb2.RemoveImpairmentRequest(name=BENCH_FADING_NAME), timeout=timeout_s)
            ctl.SetSnr(link_pb2.SetSnrRequest(snr_db=before.snr_db), timeout=timeout_s)
    target = TARGET_MEAN_ABS_ERROR_DB if fading is None else TARGET_MEAN_ABS_ERROR_FADING_DB
    mean_abs = statistics.fmean(errors)
    report = {"mean_abs_error_db": rounded(mean_abs, 4), "max_abs_error_db": rounded(max(errors), 4),
              "bias_db": rounded(statistics.fmean(r["measured_mean_db"] - r["snr_db"] for r in rows), 4),
              "snr_range_db": [min(snrs_db), max(snrs_db)], "points": len(snrs_db), "repeats": repeats,
              "pilot_length": pilot_length, "channel": channel, "target_mean_abs_error_db": target,
              "meets_target": mean_abs <= target, "per_snr": rows, "link": link,
              "machine": machine()}
    if note:
        report["note"] = note
    return report
