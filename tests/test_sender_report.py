"""The sender's report of a run, from a LinkResult without a link: JSON fields and their text form."""
from __future__ import annotations

import torch

from protos.diffusec.link.v1 import link_pb2
from sender.report import failure_report, run_report, text_lines
from sender.result import LinkResult, Sync


def result_of(classes: list[int | None]) -> LinkResult:
    acks = [None if c is None else link_pb2.Ack(frame_id=i, predicted_class=c, t_p=5) for i, c in enumerate(classes)]
    return LinkResult(acks=acks, syncs=[Sync(1, 5, 0, 12.5, 2.0), Sync(2, 5, 0, 13.5, 4.0)], frames_sent=len(classes),
                      latencies_ms=[10.0, 30.0], wall_time_s=0.5)


def test_run_report_scores_the_acked_frames():
    images = torch.zeros(3, 3, 8, 8, dtype=torch.uint8)
    report = run_report("127.0.0.1:1", "cifar10", "s", "3 images", True, result_of([1, 2, None]), images,
                        torch.tensor([1, 0, 0]))
    assert report["accuracy"] == 0.5 and report["frames_acked"] == 2 and report["ssim"] is None
    assert report["sync_count"] == 2 and report["snr_db_mean"] == 13.0 and report["sync_p50_ms"] == 3.0
    assert report["ack_latency_p50_ms"] == 20.0 and report["t_p_used"] == [5] and "predictions" not in report
    lines = text_lines(report)
    assert lines[0] == "sent 3 frames of 3 images to 127.0.0.1:1"
    assert "  accuracy             0.5" in lines and not any(line.lstrip().startswith("ssim") for line in lines)


def test_a_folder_lists_each_file_and_a_failure_counts_nothing():
    images = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    report = run_report("a:1", "cifar10", "s", "2 images from f", True, result_of([4, None]), images, None,
                        names=["x.png", "y.png"])
    assert report["accuracy"] is None
    assert report["predictions"] == [{"file": "x.png", "class": 4}, {"file": "y.png", "class": None}]
    assert text_lines(report)[-2:] == ["  x.png: class 4", "  y.png: class None"]
    failed = failure_report("a:1", "cifar10", 2, "s", "down")
    assert failed["error"] == "down" and failed["frames_sent"] == failed["frames_acked"] == 0


def test_a_run_that_gives_up_reports_what_was_delivered():
    """Issue 17: the give-up JSON printed frames_sent 0, frames_acked 0 after delivering 32 frames."""
    result = result_of([3, None, 1])
    result.frames_resent, result.refusals = 4, {"BAD_ACK_MAC": 2}
    failed = failure_report("a:1", "cifar10", 3, "s", "no progress", result)
    assert (failed["frames_sent"], failed["frames_acked"], failed["frames_resent"]) == (3, 2, 4)
    assert failed["refused"] == {"BAD_ACK_MAC": 2} and failed["error"] == "no progress"
