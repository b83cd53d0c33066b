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

import time

from shared.stats import rounded

from .common import machine

TARGET_RATIO = 0.85
# Containers against the native link (issue 16: "as fast as the native link", within noise).
TARGET_COMPOSE_RATIO = 0.8


class TimestepMismatch(ValueError):
    """The compared link's receiver answered other timesteps than the native one: not the same work."""


def _part(data, start: int, stop: int):
    from shared.data import ImageSet

    return ImageSet(data.images[start:stop], data.labels[start:stop], data.classes, data.description, data.checksum)


def run(pipeline, proxy: str, data, snr_db: float, window: int, batch: int, eval_batch: int, seed: int = 0,
        warmup: int = 32, progress=None, sender_threads: int = 1, inprocess_threads: int | None = None,
        rounds: int = 2, compose: str | None = None) -> dict:
    """Time ``data`` (an ImageSet) over the link at ``proxy`` and in process, interleaved -> the report.

    ``pipeline`` must hold codec, denoiser and classifier (the sender uses its codec). ``snr_db`` is
    what the proxy is set to (it is not changed here) and what the in-process channel uses.
    ``inprocess_threads``: torch threads of the in-process run (default: torch's). ``compose``: a
    second link's proxy address, timed in the same rotation; TimestepMismatch when its receiver
    answers other (t_D, t_plus) than the one at ``proxy``.
    """
    import torch

    from sender.link import LinkSender, SenderOptions
    from sender.report import summarize
    from shared.evaluate import evaluate

    say = progress or (lambda message: None)
    local_threads = inprocess_threads or torch.get_num_threads()
    options = SenderOptions(preset=pipeline.preset.name, window=window, batch=batch, evaluation=True, seed=seed)

    def network(part, tag: str, address: str = proxy):
        torch.set_num_threads(sender_threads)
        sender = LinkSender(pipeline, address, SenderOptions(**{**vars(options), "session": f"bench-link-{tag}-{time.time_ns()}"}))
        try:
            result = sender.run(part.images, part.labels)
        finally:
            sender.close()
        return result, summarize(result, part.images, part.labels)

    def local(part, t_d, t_plus):
        torch.set_num_threads(local_threads)
        start = time.perf_counter()
        result = evaluate(pipeline, part, "plain", snr_db, t_d, t_plus, seed, eval_batch, progress=False)
        return time.perf_counter() - start, result

    warm = _part(data, 0, min(warmup, len(data)))
    say(f"warm-up: {len(warm)} images over the link and in process")
    first, _ = network(warm, "warmup")
    t_d, t_plus = first.syncs[-1].t_d, first.syncs[-1].t_plus
    local(warm, t_d, t_plus)
    paths = ("network", "in-process")
    if compose:
        say(f"warm-up: {len(warm)} images over the compose link at {compose}")
        other, _ = network(warm, "warmup-compose", compose)
        if (other.syncs[-1].t_d, other.syncs[-1].t_plus) != (t_d, t_plus):
            raise TimestepMismatch(
                f"the link at {compose} answers (t_D, t_plus) = ({other.syncs[-1].t_d}, {other.syncs[-1].t_plus}) "
                f"but the native one ({t_d}, {t_plus}); start the native one with the same (--t-d, --t-plus)")
        paths = ("network", "compose", "in-process")
    compose_s = 0.0
    compose_acked = compose_resent = 0

    bounds = [round(i * len(data) / rounds) for i in range(rounds + 1)]
    net_s = local_s = 0.0
    acked = correct_net = correct_local = resent = 0
    ssim_net = ssim_local = 0.0
    for r in range(rounds):
        part = _part(data, bounds[r], bounds[r + 1])
        if not len(part):
            continue
        order = paths if r % 2 == 0 else paths[::-1]
        for path in order:
            say(f"round {r + 1}/{rounds}: {len(part)} images {path} at t_P = {t_d + t_plus}")
            if path == "compose":
                result, summary = network(part, f"compose-r{r}", compose)
                compose_s += result.wall_time_s
                compose_acked += summary["frames_acked"]
                compose_resent += summary["frames_resent"]
            elif path == "network":
                result, summary = network(part, f"r{r}")
                net_s += result.wall_time_s
                acked += summary["frames_acked"]
                resent += summary["frames_resent"]
                correct_net += round((summary["accuracy"] or 0.0) * summary["frames_acked"])
                ssim_net += (summary["ssim"] or 0.0) * summary["frames_acked"]
            else:
                seconds, result = local(part, t_d, t_plus)
                local_s += seconds
                correct_local += round(result.accuracy * len(part))
                ssim_local += result.ssim * len(part)
    n = len(data)
    net_ips, local_ips = acked / net_s, n / local_s
    ratio = net_ips / local_ips
    report = {"network_images_per_s": rounded(net_ips, 3), "inprocess_images_per_s": rounded(local_ips, 3),
            "ratio": rounded(ratio, 3), "target_ratio": TARGET_RATIO, "meets_target": ratio >= TARGET_RATIO,
            "n": n, "rounds": rounds, "t_d": t_d, "t_plus": t_plus, "t_p": t_d + t_plus, "snr_db": snr_db,
            "network_wall_time_s": round(net_s, 2), "inprocess_wall_time_s": round(local_s, 2),
            "network_accuracy": rounded(correct_net / max(acked, 1)), "inprocess_accuracy": rounded(correct_local / n),
            "network_ssim": rounded(ssim_net / max(acked, 1)), "inprocess_ssim": rounded(ssim_local / n),
            "frames_acked": acked, "frames_resent": resent, "sender_window": window, "sender_batch": batch,
            "sender_threads": sender_threads, "inprocess_threads": local_threads, "inprocess_batch": eval_batch,
            "data": data.description, "link": proxy, "machine": machine()}
    if compose:
        compose_ips = compose_acked / compose_s
        report.update({"compose_link": compose, "compose_images_per_s": rounded(compose_ips, 3),
                       "compose_ratio": rounded(compose_ips / net_ips, 3), "target_compose_ratio": TARGET_COMPOSE_RATIO,
                       "compose_meets_target": compose_ips / net_ips >= TARGET_COMPOSE_RATIO,
                       "compose_wall_time_s": round(compose_s, 2), "compose_frames_acked": compose_acked,
                       "compose_frames_resent": compose_resent})
    return report
