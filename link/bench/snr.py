"""``diffusec bench snr``: the receiver's pilot SNR estimate, through the channel proxy, against the set SNR.

For each SNR in the sweep (dB), the proxy's AWGN is set through ChannelControl and ``repeats``
Syncs are sent with fresh pilots of ``pilot_length`` unit-power symbols; each SyncReply's
``snr_db`` is the receiver's estimate. Errors are |estimate - set| in dB. With 1024 BPSK pilot
symbols the estimate's standard deviation is about 10 log10(1 + sqrt(2/1024)) = 0.19 dB.
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


class BenchError(RuntimeError):
    """The benchmark cannot give a meaningful number (e.g. impairments are active)."""


def sweep(low_db: float = -6.0, high_db: float = 18.0, step_db: float = 1.0) -> list[float]:
    """low, low + step, ..., high (inclusive), in dB."""
    count = int(round((high_db - low_db) / step_db)) + 1
    return [round(low_db + i * step_db, 6) for i in range(count)]


def run(link: str, control: str, snrs_db: list[float], repeats: int = 20, pilot_length: int = 1024,
        preset: str = "", timeout_s: float = 10.0) -> dict:
    """Sweep the proxy at ``control`` over ``snrs_db``, syncing through ``link``; restores the SNR after."""
    session = f"bench-snr-{uuid.uuid4().hex[:8]}"
    rows, errors = [], []
    with grpc.insecure_channel(link, options=GRPC_OPTIONS) as a, grpc.insecure_channel(control, options=GRPC_OPTIONS) as b:
        stub, ctl = link_pb2_grpc.LinkStub(a), link_pb2_grpc.ChannelControlStub(b)
        before = ctl.Stats(link_pb2.StatsRequest(), timeout=timeout_s)
        if before.impairments:
            raise BenchError(f"the proxy at {control} has {before.impairments} impairment(s); the SNR bench measures "
                             f"AWGN alone: run `diffusec-proxy --control {control} attack clear` first")
        sequence = 0
        try:
            for snr_db in snrs_db:
                ctl.SetSnr(link_pb2.SetSnrRequest(snr_db=snr_db), timeout=timeout_s)
                measured = []
                for _ in range(repeats):
                    pilot = symbols_to_bytes(pilot_sequence(session, sequence, pilot_length))
                    reply = stub.Sync(link_pb2.SyncRequest(session=session, sequence=sequence, pilot=pilot,
                                                           preset=preset), timeout=timeout_s)
                    sequence += 1
                    measured.append(reply.snr_db)
                point_errors = [abs(m - snr_db) for m in measured]
                errors += point_errors
                rows.append({"snr_db": snr_db, "measured_mean_db": rounded(statistics.fmean(measured), 3),
                             "measured_std_db": rounded(statistics.pstdev(measured), 3),
                             "mean_abs_error_db": rounded(statistics.fmean(point_errors), 3),
                             "max_abs_error_db": rounded(max(point_errors), 3)})
        finally:
            if before.snr_scheduled:
                note = "the proxy followed an SNR schedule before the bench; it is now constant"
            else:
                note = None
            ctl.SetSnr(link_pb2.SetSnrRequest(snr_db=before.snr_db), timeout=timeout_s)
    mean_abs = statistics.fmean(errors)
    report = {"mean_abs_error_db": rounded(mean_abs, 4), "max_abs_error_db": rounded(max(errors), 4),
              "bias_db": rounded(statistics.fmean(r["measured_mean_db"] - r["snr_db"] for r in rows), 4),
              "snr_range_db": [min(snrs_db), max(snrs_db)], "points": len(snrs_db), "repeats": repeats,
              "pilot_length": pilot_length, "target_mean_abs_error_db": TARGET_MEAN_ABS_ERROR_DB,
              "meets_target": mean_abs <= TARGET_MEAN_ABS_ERROR_DB, "per_snr": rows, "link": link,
              "machine": machine()}
    if note:
        report["note"] = note
    return report
