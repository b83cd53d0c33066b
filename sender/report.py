"""The sender's summary of a run: delivery counts, accuracy, SSIM and sync latency."""
from __future__ import annotations

import statistics

import torch

from protos.wire import bytes_to_image
from shared.losses import ssim01
from shared.stats import percentile, rounded

from .result import LinkResult


def summarize(result: LinkResult, images_u8: torch.Tensor, labels: torch.Tensor | None) -> dict:
    """Accuracy over acked frames with labels; SSIM(original, purified) over acks that carry an image."""
    acked = [(i, a) for i, a in enumerate(result.acks) if a is not None]
    accuracy = None
    if labels is not None and acked:
        accuracy = sum(int(a.predicted_class == int(labels[i])) for i, a in acked) / len(acked)
    with_image = [(i, a) for i, a in acked if a.image]
    ssim = None
    if with_image:
        values = []
        for start in range(0, len(with_image), 256):
            chunk = with_image[start:start + 256]
            original = images_u8[[i for i, _ in chunk]].float().div(255.0)
            received = torch.stack([bytes_to_image(a.image, a.image_shape) for _, a in chunk])
            values.append(ssim01(original, received, per_image=True))
        ssim = torch.cat(values).mean().item()
    sync_ms = [s.latency_ms for s in result.syncs]
    last = result.syncs[-1] if result.syncs else None
    return {
        "frames_sent": result.frames_sent,
        "frames_acked": len(acked),
        "frames_resent": result.frames_resent,
        "duplicate_acks": result.duplicate_acks,
        "reconnects": result.reconnects,
        "accuracy": rounded(accuracy),
        "ssim": rounded(ssim),
        "sync_count": len(result.syncs),
        "t_d": last.t_d if last else None,
        "t_plus": last.t_plus if last else None,
        "t_p_used": sorted({a.t_p for _, a in acked}),
        "epoch": last.epoch if last else None,
        "snr_db": rounded(last.snr_db, 3) if last else None,
        "snr_db_mean": rounded(statistics.fmean(s.snr_db for s in result.syncs), 3) if result.syncs else None,
        "sync_p50_ms": rounded(percentile(sync_ms, 50), 3),
        "sync_p99_ms": rounded(percentile(sync_ms, 99), 3),
        "ack_latency_p50_ms": rounded(percentile(result.latencies_ms, 50), 1),
        "wall_time_s": round(result.wall_time_s, 3),
        "images_per_s": round(len(acked) / max(result.wall_time_s, 1e-9), 2),
    }
