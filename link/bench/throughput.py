"""``diffusec bench link``: images per second over the network vs the same work in one process.

    network:    this process (sender: diffuse + encode) --> proxy (AWGN) --> receiver (decode, purify, classify)
    in-process: shared.evaluate on the same images, same t_D / t_plus, same SNR, same torch threads

``ratio`` = network / in-process images per second; the network path should keep the receiver's
micro-batches full so that ratio stays near 1. With ``compose`` (the proxy address of a link
running in containers, ``docker compose up``) a third path sends the same parts through it, from
the same sender: ``compose_ratio`` = containers / native link images per second (target >= 0.8). The images are split into ``rounds`` parts, and the
two paths alternate in ABBA order over them (network, in-process, in-process, network, ...), so
that noise from other jobs on the machine hits both alike; each rate is images / summed time.
Both paths run a short warm-up first (not timed). The timesteps are the receiver's: in attach
mode, whatever its policy answers to the first Sync. On one machine the sender (this process)
shares the cores with the receiver, so it encodes on ``sender_threads`` (1) torch threads: more
would only oversubscribe the cores the receiver needs.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import torch

from sender.link import LinkResult, LinkSender, SenderOptions
from sender.report import summarize
from shared.data import ImageSet
from shared.evaluate import EvalResult, evaluate
from shared.stats import rounded

from .common import machine

TARGET_RATIO = 0.85
# Containers against the native link (issue 16: "as fast as the native link", within noise).
TARGET_COMPOSE_RATIO = 0.8


class TimestepMismatch(ValueError):
    """The compared link's receiver answered other timesteps than the native one: not the same work."""


def _part(data: ImageSet, start: int, stop: int) -> ImageSet:
    return ImageSet(data.images[start:stop], data.labels[start:stop], data.classes, data.description, data.checksum)


@dataclass
class _Tally:
    """One path's sums over the timed rounds."""

    seconds: float = 0.0     # wall time of its runs
    images: int = 0          # images acked (over a link) or evaluated (in process)
    resent: int = 0          # frames resent (over a link)
    correct: int = 0         # top-1 hits
    ssim_sum: float = 0.0    # SSIM x images, summed

    def add(self, seconds: float, images: int, resent: int, accuracy: float | None, ssim: float | None) -> None:
        self.seconds += seconds
        self.images += images
        self.resent += resent
        self.correct += round((accuracy or 0.0) * images)
        self.ssim_sum += (ssim or 0.0) * images


@dataclass
class _Paths:
    """How each path runs a part of the images: over the link at ``proxy`` (or ``compose``), from
    this process on ``sender_threads`` torch threads, or in process on ``local_threads``."""

    pipeline: object
    proxy: str
    compose: str | None
    sender: SenderOptions
    snr_db: float
    eval_batch: int
    seed: int
    sender_threads: int
    local_threads: int

    def network(self, part: ImageSet, tag: str, address: str | None = None) -> tuple[LinkResult, dict]:
        """One sender session over ``address`` (default: the native link) -> its result and summary."""
        torch.set_num_threads(self.sender_threads)
        options = dataclasses.replace(self.sender, session=f"bench-link-{tag}-{time.time_ns()}")
        with LinkSender(self.pipeline, address or self.proxy, options) as sender:
            result = sender.run(part.images, part.labels)
        return result, summarize(result, part.images, part.labels)

    def local(self, part: ImageSet, t_d: int, t_plus: int) -> tuple[float, EvalResult]:
        """The same chain in process -> (seconds, its result)."""
        torch.set_num_threads(self.local_threads)
        start = time.perf_counter()
        result = evaluate(self.pipeline, part, "plain", self.snr_db, t_d, t_plus, self.seed, self.eval_batch,
                          progress=False)
        return time.perf_counter() - start, result

    def time(self, path: str, part: ImageSet, round_: int, t_d: int, t_plus: int, tally: _Tally) -> None:
        """Run ``part`` over ``path`` ("network", "compose" or "in-process") and add it to ``tally``."""
        if path == "in-process":
            seconds, result = self.local(part, t_d, t_plus)
            tally.add(seconds, len(part), 0, result.accuracy, result.ssim)
            return
        if path == "compose":
            result, summary = self.network(part, f"compose-r{round_}", self.compose)
        else:
            result, summary = self.network(part, f"r{round_}")
        tally.add(result.wall_time_s, summary["frames_acked"], summary["frames_resent"], summary["accuracy"],
                  summary["ssim"])


def _warm_up(paths: _Paths, data: ImageSet, warmup: int, say) -> tuple[int, int, tuple[str, ...]]:
    """Untimed runs of every path -> (t_D, t_plus) the native receiver answered, the paths to time.

    TimestepMismatch when the compose link's receiver answers other timesteps.
    """
    warm = _part(data, 0, min(warmup, len(data)))
    say(f"warm-up: {len(warm)} images over the link and in process")
    first, _ = paths.network(warm, "warmup")
    t_d, t_plus = first.syncs[-1].t_d, first.syncs[-1].t_plus
    paths.local(warm, t_d, t_plus)
    if not paths.compose:
        return t_d, t_plus, ("network", "in-process")
    say(f"warm-up: {len(warm)} images over the compose link at {paths.compose}")
    other, _ = paths.network(warm, "warmup-compose", paths.compose)
    if (other.syncs[-1].t_d, other.syncs[-1].t_plus) != (t_d, t_plus):
        raise TimestepMismatch(
            f"the link at {paths.compose} answers (t_D, t_plus) = ({other.syncs[-1].t_d}, {other.syncs[-1].t_plus}) "
            f"but the native one ({t_d}, {t_plus}); start the native one with the same (--t-d, --t-plus)")
    return t_d, t_plus, ("network", "compose", "in-process")


def _time_rounds(paths: _Paths, data: ImageSet, rounds: int, order: tuple[str, ...], t_d: int, t_plus: int,
                 say) -> dict[str, _Tally]:
    """The images in ``rounds`` parts, each over every path, in ABBA order -> path -> its sums."""
    tallies = {path: _Tally() for path in order}
    bounds = [round(i * len(data) / rounds) for i in range(rounds + 1)]
    for r in range(rounds):
        part = _part(data, bounds[r], bounds[r + 1])
        if not len(part):
            continue
        for path in order if r % 2 == 0 else order[::-1]:
            say(f"round {r + 1}/{rounds}: {len(part)} images {path} at t_P = {t_d + t_plus}")
            paths.time(path, part, r, t_d, t_plus, tallies[path])
    return tallies


def _report(paths: _Paths, tallies: dict[str, _Tally], data: ImageSet, rounds: int, t_d: int, t_plus: int) -> dict:
    """The benchmark's JSON object (images per second, the ratios against their targets, the checks)."""
    net, local, n = tallies["network"], tallies["in-process"], len(data)
    net_ips, local_ips = net.images / net.seconds, n / local.seconds
    ratio = net_ips / local_ips
    report = {"network_images_per_s": rounded(net_ips, 3), "inprocess_images_per_s": rounded(local_ips, 3),
              "ratio": rounded(ratio, 3), "target_ratio": TARGET_RATIO, "meets_target": ratio >= TARGET_RATIO,
              "n": n, "rounds": rounds, "t_d": t_d, "t_plus": t_plus, "t_p": t_d + t_plus, "snr_db": paths.snr_db,
              "network_wall_time_s": round(net.seconds, 2), "inprocess_wall_time_s": round(local.seconds, 2),
              "network_accuracy": rounded(net.correct / max(net.images, 1)),
              "inprocess_accuracy": rounded(local.correct / n),
              "network_ssim": rounded(net.ssim_sum / max(net.images, 1)), "inprocess_ssim": rounded(local.ssim_sum / n),
              "frames_acked": net.images, "frames_resent": net.resent, "sender_window": paths.sender.window,
              "sender_batch": paths.sender.batch, "sender_threads": paths.sender_threads,
              "inprocess_threads": paths.local_threads, "inprocess_batch": paths.eval_batch,
              "data": data.description, "link": paths.proxy, "machine": machine()}
    if paths.compose:
        compose = tallies["compose"]
        compose_ips = compose.images / compose.seconds
        report.update({"compose_link": paths.compose, "compose_images_per_s": rounded(compose_ips, 3),
                       "compose_ratio": rounded(compose_ips / net_ips, 3), "target_compose_ratio": TARGET_COMPOSE_RATIO,
                       "compose_meets_target": compose_ips / net_ips >= TARGET_COMPOSE_RATIO,
                       "compose_wall_time_s": round(compose.seconds, 2), "compose_frames_acked": compose.images,
                       "compose_frames_resent": compose.resent})
    return report


def run(pipeline, proxy: str, data: ImageSet, snr_db: float, window: int, batch: int, eval_batch: int, seed: int = 0,
        warmup: int = 32, progress=None, sender_threads: int = 1, inprocess_threads: int | None = None,
        rounds: int = 2, compose: str | None = None) -> dict:
    """Time ``data`` (an ImageSet) over the link at ``proxy`` and in process, interleaved -> the report.

    ``pipeline`` must hold codec, denoiser and classifier (the sender uses its codec). ``snr_db`` is
    what the proxy is set to (it is not changed here) and what the in-process channel uses.
    ``inprocess_threads``: torch threads of the in-process run (default: torch's). ``compose``: a
    second link's proxy address, timed in the same rotation; TimestepMismatch when its receiver
    answers other (t_D, t_plus) than the one at ``proxy``.
    """
    say = progress or (lambda message: None)
    sender = SenderOptions(preset=pipeline.preset.name, window=window, batch=batch, evaluation=True, seed=seed)
    paths = _Paths(pipeline, proxy, compose, sender, snr_db, eval_batch, seed, sender_threads,
                   inprocess_threads or torch.get_num_threads())
    t_d, t_plus, order = _warm_up(paths, data, warmup, say)
    tallies = _time_rounds(paths, data, rounds, order, t_d, t_plus, say)
    return _report(paths, tallies, data, rounds, t_d, t_plus)
