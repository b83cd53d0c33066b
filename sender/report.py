"""The sender's report of a run: delivery counts, accuracy, SSIM, sync latency, the source attack's success."""
from __future__ import annotations

import json
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
        "refused": dict(sorted(result.refusals.items())),
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


def attack_report(attack, result: LinkResult, labels: torch.Tensor | None) -> dict:
    """source_attack (its parameters) and attack_success_rate over the acked frames (None without
    labels for a non-targeted attack: there success means "misclassified")."""
    from shared.attacks.chain import success_counts
    from shared.attacks.source import describe

    acked = [(i, a.predicted_class) for i, a in enumerate(result.acks) if a is not None]
    rate = None
    if acked and (labels is not None or attack.target is not None):
        predicted = torch.tensor([c for _, c in acked])
        truth = labels[[i for i, _ in acked]] if labels is not None else torch.full_like(predicted, -1)
        wins, eligible = success_counts(predicted, truth, attack.target)
        rate = round(wins / eligible, 4) if eligible else None
    described = describe(attack, "plain")
    described["stored"] = "uint8 (8-bit image files)"
    return {"source_attack": described, "attack_success_rate": rate}


def run_report(address: str, preset: str, session: str, description: str, evaluation: bool, result: LinkResult,
               images_u8: torch.Tensor, labels: torch.Tensor | None, attack=None,
               names: list[str] | None = None) -> dict:
    """The JSON object of ``diffusec-sender run``: where and what was sent, :func:`summarize`, the
    source attack's success (with ``attack``) and, for a folder of files (``names``), each file's class."""
    report = {"to": address, "preset": preset, "n": len(images_u8), "session": session, "data": description,
              "evaluation": evaluation, **summarize(result, images_u8, labels)}
    if attack is not None:
        report.update(attack_report(attack, result, labels))
    if names is not None:
        report["predictions"] = [{"file": name, "class": ack.predicted_class if ack else None}
                                 for name, ack in zip(names, result.acks)]
    return report


def failure_report(address: str, preset: str, n: int, session: str, error: str,
                   result: LinkResult | None = None) -> dict:
    """The JSON object of a run whose link failed: the error and what was delivered before it
    (``result``, the failed run's record; None: nothing was)."""
    delivered = {"frames_sent": 0, "frames_acked": 0, "frames_resent": 0, "reconnects": 0, "refused": {}}
    if result is not None:
        delivered = {"frames_sent": result.frames_sent, "frames_acked": sum(a is not None for a in result.acks),
                     "frames_resent": result.frames_resent, "reconnects": result.reconnects,
                     "refused": dict(sorted(result.refusals.items()))}
    return {"to": address, "preset": preset, "n": n, "session": session, "error": error, **delivered}


TEXT_FIELDS = ("frames_acked", "frames_resent", "reconnects", "accuracy", "ssim", "sync_count", "t_d", "t_plus",
               "snr_db", "sync_p50_ms", "ack_latency_p50_ms", "images_per_s", "wall_time_s")


def text_lines(report: dict) -> list[str]:
    """:func:`run_report` for a person: what was sent where, then one ``name value`` line per known figure."""
    lines = [f"sent {report['frames_sent']} frames of {report['data']} to {report['to']}"]
    lines += [f"  {key:20s} {report[key]}" for key in TEXT_FIELDS if report[key] is not None]
    if "source_attack" in report:
        lines.append(f"  {'attack_success_rate':20s} {report['attack_success_rate']}")
        lines.append(f"  {'source_attack':20s} {json.dumps(report['source_attack'])}")
    lines += [f"  {item['file']}: class {item['class']}" for item in report.get("predictions", ())]
    return lines
