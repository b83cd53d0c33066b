"""``diffusec bench link``: images per second over the network vs the same work in one process.

    network:    this process (sender: diffuse + encode) --> proxy (AWGN) --> receiver (decode, purify, classify)
    in-process: shared.evaluate on the same images, same t_D / t_plus, same SNR, same torch threads

``ratio`` = network / in-process images per second; the network path should keep the receiver's
micro-batches full so that ratio stays near 1. Both paths run a short warm-up first (not timed).
The timesteps are the receiver's: in attach mode, whatever its policy answers to the first Sync.
On one machine the sender (this process) shares the cores with the receiver, so it encodes on
``sender_threads`` (1) torch threads: more would only oversubscribe the cores the receiver needs.
"""
from __future__ import annotations

import time

from .common import machine, rounded

TARGET_RATIO = 0.85


def run(pipeline, proxy: str, data, snr_db: float, window: int, batch: int, eval_batch: int, seed: int = 0,
        warmup: int = 32, progress=None, sender_threads: int = 1, inprocess_threads: int | None = None) -> dict:
    """Time ``data`` (an ImageSet) over the link at ``proxy``, then in process; -> the report.

    ``pipeline`` must hold codec, denoiser and classifier (the sender uses its codec). ``snr_db`` is
    what the proxy is set to (it is not changed here) and what the in-process channel uses.
    ``inprocess_threads``: torch threads of the in-process run (default: torch's).
    """
    import torch

    from sender.link import LinkSender, SenderOptions
    from sender.report import summarize
    from shared.evaluate import evaluate

    say = progress or (lambda message: None)
    images, labels = data.images, data.labels
    options = SenderOptions(preset=pipeline.preset.name, window=window, batch=batch, evaluation=True, seed=seed)

    def send(count: int, tag: str):
        sender = LinkSender(pipeline, proxy, SenderOptions(**{**vars(options), "session": f"bench-link-{tag}-{time.time_ns()}"}))
        try:
            return sender.run(images[:count], labels[:count])
        finally:
            sender.close()

    threads_before = torch.get_num_threads()
    torch.set_num_threads(sender_threads)
    say(f"network warm-up: {min(warmup, len(images))} images")
    first = send(min(warmup, len(images)), "warmup")
    t_d, t_plus = first.syncs[-1].t_d, first.syncs[-1].t_plus
    say(f"network: {len(images)} images at t_D = {t_d}, t_plus = {t_plus} (t_P = {t_d + t_plus})")
    network = send(len(images), "timed")
    net = summarize(network, images, labels)
    net_ips = net["frames_acked"] / network.wall_time_s

    torch.set_num_threads(inprocess_threads or threads_before)
    say("in-process warm-up")
    warm = data.subset(min(warmup, len(images)), seed)
    evaluate(pipeline, warm, "plain", snr_db, t_d, t_plus, seed, eval_batch, progress=False)
    say(f"in-process: {len(images)} images, batch {eval_batch}")
    start = time.perf_counter()
    local = evaluate(pipeline, data, "plain", snr_db, t_d, t_plus, seed, eval_batch, progress=False)
    local_s = time.perf_counter() - start
    local_ips = len(images) / local_s

    ratio = net_ips / local_ips
    return {"network_images_per_s": rounded(net_ips, 3), "inprocess_images_per_s": rounded(local_ips, 3),
            "ratio": rounded(ratio, 3), "target_ratio": TARGET_RATIO, "meets_target": ratio >= TARGET_RATIO,
            "n": len(images), "t_d": t_d, "t_plus": t_plus, "t_p": t_d + t_plus, "snr_db": snr_db,
            "network_wall_time_s": round(network.wall_time_s, 2), "inprocess_wall_time_s": round(local_s, 2),
            "network_accuracy": net["accuracy"], "inprocess_accuracy": local.accuracy,
            "network_ssim": net["ssim"], "inprocess_ssim": local.ssim,
            "frames_resent": net["frames_resent"], "sender_window": window, "sender_batch": batch,
            "sender_threads": sender_threads, "inprocess_threads": torch.get_num_threads(),
            "inprocess_batch": eval_batch, "data": data.description, "link": proxy, "machine": machine()}
