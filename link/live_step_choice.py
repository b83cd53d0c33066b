"""Live step choice (``diffusec demo --adaptation``): the receiver's step policy following a
scheduled channel over a running link.

Not the JPEG+LDPC baseline's modulation-and-coding choice (:mod:`shared.baselines.link_adaptation`)
nor the in-process agent evaluation (``diffusec eval adaptation``, :mod:`shared.agent.evaluate`).

Brings nothing up itself. Given a channel proxy (its Link and ChannelControl addresses), the
sender's codec and some images, :func:`run`

1. sends a short warm-up session to measure the link's images per second (the receiver's first
   batches are slow, and the run must last the whole schedule);
2. sets a proxy SNR schedule with ChannelControl.ScheduleSnr, by default 15 dB at 0 s, -3 dB at
   T, 9 dB at 2T (T = ``phase_s``), the last SNR holding afterwards;
3. runs one :class:`sender.link.LinkSender` session with a small ``sync_every`` over enough
   images (the given ones, reused cyclically) to cover 3T, and records every Sync: its time,
   the SNR the receiver measured on the pilot, the (t_D, t_plus) the policy chose, and the SNR
   the schedule set at that time (the time of a sync: halfway through its round trip, when
   the proxy adds the noise to the pilot);
4. per SNR phase: after how many syncs the choice settled, and the top-1 accuracy of the frames
   sent under that phase's epochs (clean images, no attack: a check that the link works, not a
   robustness figure).

Settling. Within a phase, the choice has settled at the k-th sync after the change (k = 1: the
first sync in the phase already chose it) when that sync and every later one of the phase are
within ``tolerance`` timesteps, on t_D and on t_plus separately, of the phase's last choice
(``settled_after_syncs``; ``settled_after_syncs_exact`` is the same with tolerance 0). A tail of
a single sync (the choice still moving at the end of the phase) does not count as settled. A
tolerance is needed because the DDPG actor is a state-to-state map applied once per sync: it may
move by a step or two around its fixed point while the SNR estimate wobbles by ~0.2 dB.

Units: times in seconds since the schedule was set, SNR in dB, t_D and t_plus in timesteps.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
import torch

from protos.diffusec.link.v1 import link_pb2, link_pb2_grpc
from protos.wire import GRPC_OPTIONS

if TYPE_CHECKING:
    from sender.link import LinkResult, SenderOptions

DEFAULT_PHASES_DB = (15.0, -3.0, 9.0)
SETTLE_TOLERANCE = 2      # timesteps, on t_D and t_plus each (see the module doc)
SETTLE_WITHIN = 3         # the bar: settled within this many syncs of each SNR change
# A warm-up rate from acks closer together than this is a burst of one micro-batch, not a rate (it
# once made a 2-image run send 50,000 images).
MIN_RATE_SPAN_S = 1.0


class AdaptationError(RuntimeError):
    """The live adaptation could not run as asked (no syncs recorded, bad options)."""


@dataclass
class AdaptationOptions:
    """How the run goes; times in seconds, SNRs in dB."""

    preset: str = "cifar10"
    phase_s: float = 20.0                      # T: each SNR holds this long (the last one until the end)
    phases_db: tuple[float, ...] = DEFAULT_PHASES_DB
    sync_every: int = 8                        # frames between syncs
    # A window of two chunks keeps the frames (and so the syncs) flowing steadily: with a large
    # window the sender sends many chunks at once and its syncs come in bursts milliseconds apart.
    window: int = 16
    batch: int = 8
    ack_timeout_s: float = 2.0
    retry_timeout_s: float = 60.0
    warmup_images: int = 48                    # images of the throughput-measuring warm-up session
    margin: float = 1.3                        # images for margin x (measured rate) x (phases x T)
    max_images: int = 50_000
    tolerance: int = SETTLE_TOLERANCE
    seed: int = 0


def schedule_points(phase_s: float, phases_db=DEFAULT_PHASES_DB) -> list[tuple[float, float]]:
    """[(at_s, snr_db)]: phase k starts at k x ``phase_s`` seconds."""
    if not phase_s > 0:
        raise AdaptationError(f"the phase length must be > 0 s, got {phase_s}")
    if not phases_db:
        raise AdaptationError("need at least one SNR phase")
    return [(k * float(phase_s), float(db)) for k, db in enumerate(phases_db)]


def phase_at(points: list[tuple[float, float]], t_s: float) -> int:
    """Index of the schedule point in force at ``t_s`` seconds (the first before it starts)."""
    k = 0
    for i, (at_s, _) in enumerate(points):
        if t_s >= at_s:
            k = i
    return k


def settle(choices: list[tuple[int, int]], tolerance: int = SETTLE_TOLERANCE) -> dict:
    """When a phase's sequence of (t_D, t_plus) choices stopped moving (see the module doc).

    -> settled_after_syncs (1-based index into ``choices``, None if not settled), the same with
    tolerance 0, the length of the stable tail (syncs), the final choice, and how many times the
    choice changed from one sync to the next.
    """
    n = len(choices)
    if n == 0:
        return {"syncs": 0, "settled_after_syncs": None, "settled_after_syncs_exact": None,
                "stable_tail_syncs": 0, "final": None, "changes": 0}

    def after(tol: int) -> tuple[int | None, int]:
        final = choices[-1]
        k = n
        while k > 0 and abs(choices[k - 1][0] - final[0]) <= tol and abs(choices[k - 1][1] - final[1]) <= tol:
            k -= 1
        tail = n - k
        return (k + 1 if tail >= min(2, n) else None), tail

    settled, tail = after(tolerance)
    exact, _ = after(0)
    changes = sum(1 for a, b in zip(choices, choices[1:]) if a != b)
    report = {"syncs": n, "settled_after_syncs": settled, "settled_after_syncs_exact": exact,
              "stable_tail_syncs": tail, "final": list(choices[-1]), "changes": changes, "cycle": None,
              "cycle_from_sync": None}
    if settled is None:
        # An unsettled policy applied once per sync may alternate between two states (a 2-cycle of
        # the map state -> state + mu(state, SNR)); name them rather than just "not settled".
        k = n - 1
        while k >= 2 and all(abs(a - b) <= tolerance for a, b in zip(choices[k], choices[k - 2])):
            k -= 1
        start = k - 1 if k < n - 1 else None   # 0-based first sync of the alternation
        if start is not None and n - start >= 4:
            report["cycle"] = [list(choices[-2]), list(choices[-1])]
            report["cycle_from_sync"] = start + 1
    return report


@dataclass
class _LiveRun:
    """What the live session gave: its LinkResult, the warm-up rate, which image each frame was."""

    link: LinkResult
    rate: float               # images per second in the warm-up session
    index: torch.Tensor       # int64 [images sent]: frame i is images[index[i]]
    schedule_t0: float        # time.perf_counter() when the schedule was set


def _sender_options(options: AdaptationOptions, session: str) -> SenderOptions:
    """The sender's options for a session named ``session``-<unix time> (no evaluation mode: no images back)."""
    from sender.link import SenderOptions

    return SenderOptions(preset=options.preset, session=f"{session}-{int(time.time())}",
                         sync_every=options.sync_every, window=options.window, batch=options.batch,
                         ack_timeout_s=options.ack_timeout_s, retry_timeout_s=options.retry_timeout_s,
                         evaluation=False, seed=options.seed)


def _warmup_rate(pipeline, proxy: str, images, labels, options: AdaptationOptions) -> float:
    """Images per second of the link, from a short session of its own: the acks after the first quarter
    (the receiver's first batches include its warm-up), or, when those came within MIN_RATE_SPAN_S of
    each other (one micro-batch acks together), the whole session's acks over its whole time."""
    from sender.link import LinkSender

    n = max(8, options.warmup_images)
    index = torch.arange(n) % len(images)   # few images given: reused, as in the live run
    times: list[float] = []
    with LinkSender(pipeline, proxy, _sender_options(options, "adapt-warmup"),
                    on_ack=lambda k: times.append(time.perf_counter())) as sender:
        start = time.perf_counter()
        sender.run(images[index], labels[index] if labels is not None else None)
    first = len(times) // 4
    span = times[-1] - times[first] if len(times) > first + 1 else 0.0
    if span >= MIN_RATE_SPAN_S:
        return (len(times) - 1 - first) / span
    return len(times) / max(times[-1] - start, 1e-3)


def _images_to_send(rate: float, duration_s: float, options: AdaptationOptions, given: int,
                    note: Callable[[str], None]) -> int:
    """Enough images to cover ``duration_s`` at ``rate`` images/s with the margin, capped at max_images."""
    n = math.ceil(rate * duration_s * options.margin)
    if n > options.max_images:
        note(f"the link ran at {rate:.0f} images/s; capping the run at {options.max_images} images, "
             f"which may end before {duration_s:g} s")
        n = options.max_images
    note(f"warm-up: {rate:.1f} images/s; sending {n} images (the {given} given, reused "
         f"cyclically) over {duration_s:g} s, a Sync every {options.sync_every} frames")
    return n


def _run_live(pipeline, proxy: str, control: str, images: torch.Tensor, labels: torch.Tensor | None,
              options: AdaptationOptions, points: list[tuple[float, float]], note: Callable[[str], None]) -> _LiveRun:
    """Warm up at the first SNR, set the schedule, send one session over it (steps 1-3 of the module
    doc); the proxy gets its fixed SNR from before back at the end (which also ends the schedule)."""
    from sender.link import LinkSender

    with grpc.insecure_channel(control, options=GRPC_OPTIONS) as channel:
        ctl = link_pb2_grpc.ChannelControlStub(channel)
        before_snr_db = ctl.Stats(link_pb2.StatsRequest(), timeout=10).snr_db
        try:
            ctl.SetSnr(link_pb2.SetSnrRequest(snr_db=points[0][1]), timeout=10)
            rate = _warmup_rate(pipeline, proxy, images, labels, options)
            n = _images_to_send(rate, options.phase_s * len(points), options, len(images), note)
            index = torch.arange(n) % len(images)
            with LinkSender(pipeline, proxy, _sender_options(options, "adapt-live")) as sender:
                schedule_t0 = time.perf_counter()
                ctl.ScheduleSnr(link_pb2.ScheduleSnrRequest(
                    points=[link_pb2.SnrPoint(at_s=t, snr_db=db) for t, db in points]), timeout=10)
                link = sender.run(images[index], labels[index] if labels is not None else None)
        finally:
            ctl.SetSnr(link_pb2.SetSnrRequest(snr_db=before_snr_db), timeout=10)
    return _LiveRun(link, rate, index, schedule_t0)


def _sync_rows(live: _LiveRun, points: list[tuple[float, float]]) -> list[dict]:
    """One row per Sync: its time since the schedule was set (s), phase, scheduled and measured SNR
    (dB), the (t_D, t_plus) chosen, the epoch and the round trip (ms)."""
    rows = []
    for s in live.link.syncs:
        # The proxy adds the channel's noise to the pilot about halfway through the round trip.
        t = live.link.started_at + s.at_s + s.latency_ms / 2000.0 - live.schedule_t0
        k = phase_at(points, t)
        rows.append({"at_s": round(t, 3), "phase": k, "scheduled_snr_db": points[k][1],
                     "measured_snr_db": round(s.snr_db, 2), "t_d": s.t_d, "t_plus": s.t_plus, "epoch": s.epoch,
                     "latency_ms": round(s.latency_ms, 3)})
    return rows


def _phase_tallies(live: _LiveRun, labels: torch.Tensor | None, syncs: list[dict], phases: int) -> list[list[int]]:
    """[correct, acked] per phase, over the frames sent under the epochs of that phase's syncs."""
    phase_of_epoch = {s["epoch"]: s["phase"] for s in syncs}
    tallies = [[0, 0] for _ in range(phases)]
    for i, ack in enumerate(live.link.acks):
        if ack is None or labels is None or ack.epoch not in phase_of_epoch:
            continue
        tally = tallies[phase_of_epoch[ack.epoch]]
        tally[0] += int(ack.predicted_class == int(labels[live.index[i]]))
        tally[1] += 1
    return tallies


def _phase_row(k: int, points: list[tuple[float, float]], syncs: list[dict], tally: list[int],
               options: AdaptationOptions) -> dict:
    """Phase ``k``'s figures: its span and SNR, the SNR measured in it, the settle analysis, the accuracy."""
    at_s, snr_db = points[k]
    rows = [s for s in syncs if s["phase"] == k]
    measured = [s["measured_snr_db"] for s in rows]
    phase = {"phase": k, "start_s": at_s, "end_s": at_s + options.phase_s if k + 1 < len(points) else None,
             "scheduled_snr_db": snr_db,
             "measured_snr_db_mean": round(sum(measured) / len(measured), 2) if measured else None,
             "measured_snr_max_abs_error_db": round(max(abs(m - snr_db) for m in measured), 2) if measured else None,
             **settle([(s["t_d"], s["t_plus"]) for s in rows], options.tolerance),
             "frames": tally[1],
             "accuracy": round(tally[0] / tally[1], 4) if tally[1] else None}
    phase["settled_within"] = phase["settled_after_syncs"] is not None and phase["settled_after_syncs"] <= SETTLE_WITHIN
    return phase


def run(pipeline, proxy: str, control: str, images: torch.Tensor, labels: torch.Tensor | None,
        options: AdaptationOptions, progress: Callable[[str], None] | None = None) -> dict:
    """The live step choice over the link at ``proxy`` (see the module doc) -> the report dict.

    ``images``: uint8 [N, C, H, W], reused cyclically; ``labels`` (or None) for the accuracy.
    The proxy's SNR schedule is replaced by a fixed SNR again at the end (the one it had before).
    """
    points = schedule_points(options.phase_s, options.phases_db)
    started = time.perf_counter()
    live = _run_live(pipeline, proxy, control, images, labels, options, points, progress or (lambda message: None))
    syncs = _sync_rows(live, points)
    if not syncs:
        raise AdaptationError("the sender recorded no syncs")
    tallies = _phase_tallies(live, labels, syncs, len(points))
    phases = [_phase_row(k, points, syncs, tallies[k], options) for k in range(len(points))]
    link, last_s = live.link, syncs[-1]["at_s"]
    return {"schedule": [{"at_s": t, "snr_db": db} for t, db in points], "phase_s": options.phase_s,
            "sync_every": options.sync_every, "window": options.window, "batch": options.batch,
            "settle_tolerance_timesteps": options.tolerance, "settle_within_syncs": SETTLE_WITHIN,
            "warmup_images_per_s": round(live.rate, 2), "images_sent": len(live.index),
            "frames_acked": sum(a is not None for a in link.acks),
            "frames_resent": link.frames_resent, "reconnects": link.reconnects,
            "sync_count": len(syncs), "last_sync_s": last_s, "covered_schedule": last_s >= points[-1][0],
            "run_wall_time_s": round(link.wall_time_s, 2), "wall_time_s": round(time.perf_counter() - started, 2),
            "all_settled_within": all(p["settled_within"] for p in phases), "phases": phases, "syncs": syncs}


def table(report: dict, head: int = 6, tail: int = 2) -> str:
    """Per-sync rows (time, scheduled and measured SNR, t_D, t_plus); long phases show their first
    ``head`` and last ``tail`` syncs (the JSON has every one)."""
    lines = [f"{'time s':>8}  {'sched dB':>8}  {'meas dB':>8}  {'t_D':>4}  {'t_plus':>6}"]
    for phase in report["phases"]:
        rows = [s for s in report["syncs"] if s["phase"] == phase["phase"]]
        shown = rows if len(rows) <= head + tail + 1 else rows[:head] + [None] + rows[-tail:]
        for s in shown:
            if s is None:
                lines.append(f"{'...':>8}  ({len(rows) - head - tail} more syncs)")
                continue
            lines.append(f"{s['at_s']:8.2f}  {s['scheduled_snr_db']:8.1f}  {s['measured_snr_db']:8.2f}  "
                         f"{s['t_d']:4d}  {s['t_plus']:6d}")
    return "\n".join(lines)


def settle_lines(report: dict) -> list[str]:
    """One line per phase: the SNR, how many syncs until the choice settled, the accuracy."""
    out = []
    tol = report["settle_tolerance_timesteps"]
    for p in report["phases"]:
        if not p["syncs"]:
            out.append(f"phase {p['phase'] + 1} ({p['scheduled_snr_db']:g} dB): no syncs (the run ended first)")
            continue
        if p["settled_after_syncs"] is not None:
            how = (f"settled after {p['settled_after_syncs']} sync(s) (+-{tol} timesteps; exactly: "
                   f"{'after ' + str(p['settled_after_syncs_exact']) if p['settled_after_syncs_exact'] else 'no'})")
        elif p["cycle"]:
            (a, b), (c, d) = p["cycle"]
            how = (f"did NOT settle: alternates between ({a}, {b}) and ({c}, {d}) from sync {p['cycle_from_sync']} "
                   f"to the phase's end")
        else:
            how = "did NOT settle (the choice still moved at the phase's end)"
        acc = "-" if p["accuracy"] is None else f"{p['accuracy']:.3f}"
        out.append(f"phase {p['phase'] + 1} ({p['scheduled_snr_db']:g} dB, measured {p['measured_snr_db_mean']:.2f} dB): "
                   f"{how}, final (t_D, t_plus) = ({p['final'][0]}, {p['final'][1]}), {p['syncs']} syncs, "
                   f"{p['changes']} changes, accuracy {acc} on {p['frames']} frames")
    return out


def plot(report: dict, path, title: str | None = None) -> None:
    """SNR (scheduled and measured, dB) and t_D / t_plus (timesteps) against time (s), to ``path`` (PNG).

    ``report`` may carry ``policy``, ``preset`` and ``data`` (named in the default title).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    syncs, schedule = report["syncs"], report["schedule"]
    t = [s["at_s"] for s in syncs]
    end = max(t[-1], schedule[-1]["at_s"] + report["phase_s"])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True, gridspec_kw={"height_ratios": [1, 1.2]})
    xs = [p["at_s"] for p in schedule] + [end]
    ys = [p["snr_db"] for p in schedule] + [schedule[-1]["snr_db"]]
    top.step(xs, ys, where="post", color="black", lw=2, label="scheduled SNR (proxy)")
    top.plot(t, [s["measured_snr_db"] for s in syncs], "o", ms=3, color="tab:blue", alpha=0.7,
             label="measured SNR (receiver, pilot per Sync)")
    top.set_ylabel("SNR (dB)")
    top.legend(loc="upper right", fontsize=8)
    bottom.step(t, [s["t_d"] for s in syncs], where="post", color="tab:red", lw=1.5, label="t_D (sender diffuses)")
    bottom.plot(t, [s["t_d"] for s in syncs], ".", color="tab:red", ms=4)
    bottom.step(t, [s["t_plus"] for s in syncs], where="post", color="tab:green", lw=1.5,
                label="t_plus (receiver's extra steps)")
    bottom.plot(t, [s["t_plus"] for s in syncs], ".", color="tab:green", ms=4)
    bottom.set_ylabel("timesteps")
    bottom.set_xlabel("time since the schedule was set (s)")
    top_step = max(max(s["t_d"], s["t_plus"]) for s in syncs)
    bottom.set_ylim(0, max(top_step, 10) * 1.3)   # room for the phase notes above the curves
    bottom.legend(loc="center right", fontsize=8, framealpha=0.9)
    for p in report["phases"][1:]:
        for ax in (top, bottom):
            ax.axvline(p["start_s"], color="gray", ls="--", lw=1)
    for p in report["phases"]:
        n = p["settled_after_syncs"]
        if n is not None:
            text = f"settled after {n} sync{'s' if n != 1 else ''}"
        elif p["cycle"]:
            text = "not settled: alternates\n" + " <-> ".join(f"({a}, {b})" for a, b in p["cycle"])
        else:
            text = "no syncs" if not p["syncs"] else "not settled"
        bottom.annotate(text, (p["start_s"] + 0.01 * end, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(0, -4), textcoords="offset points", fontsize=8, va="top")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.set_xlim(0, end)
    episodes = (report.get("receiver") or {}).get("episode_steps")
    rule = "" if episodes is None else (f" ({episodes} decisions per channel state, then hold)" if episodes
                                        else " (a decision at every Sync)")
    fig.suptitle(title or (f"Live adaptation: policy {report.get('policy', '?')}{rule}, preset {report.get('preset', '?')},\n"
                           f"{report.get('data', '?')}; a Sync every {report['sync_every']} frames"), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
