"""``diffusec demo``: bring the link up, send the same test images under a short scenario table, report.

Each scenario sets the proxy's channel through ChannelControl (SNR in dB, impairments), then the
sender (in this process, the real :class:`sender.link.LinkSender`) sends the N images over the
proxy with a fresh session, and the acks are scored: accuracy (top-1, 0..1), SSIM between each
original and the receiver's purified image (0..1), frames acked and resent. The sync latency is
one Sync round trip through the proxy (milliseconds), over every sync of every scenario.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from protos.diffusec.link.v1 import link_pb2, link_pb2_grpc
from protos.wire import GRPC_OPTIONS
from shared.stats import percentile, rounded


@dataclass(frozen=True)
class Scenario:
    """A channel condition: AWGN SNR (dB) plus impairments (link.proto ``Impairment`` messages)."""

    name: str
    snr_db: float
    impairments: tuple = ()
    description: str = ""


def default_scenarios() -> list[Scenario]:
    """Clean at 15 dB, AWGN at -3 dB, jamming at PNR 10 dB on 15 dB (SINR 4.6 dB), 20% frame loss."""
    return [
        Scenario("clean", 15.0, (), "AWGN 15 dB"),
        Scenario("awgn-low", -3.0, (), "AWGN -3 dB"),
        Scenario("jamming", 15.0, (link_pb2.Impairment(name="jamming", jamming=link_pb2.Jamming(pnr_db=10.0)),),
                 "AWGN 15 dB + jamming PNR 10 dB"),
        Scenario("drop", 15.0, (link_pb2.Impairment(name="drop", drop=link_pb2.Drop(rate=0.2)),),
                 "AWGN 15 dB + 20% frame loss"),
    ]


@dataclass
class DemoOptions:
    """How the sender runs in each scenario (see ``diffusec-sender run --help``); times in seconds."""

    preset: str = "cifar10"
    sync_every: int = 25
    window: int = 64
    batch: int = 32
    ack_timeout_s: float = 2.0
    retry_timeout_s: float = 60.0
    seed: int = 0


@dataclass
class DemoResult:
    rows: list = field(default_factory=list)
    sync_ms: list = field(default_factory=list)
    wall_time_s: float = 0.0


def set_channel(control: link_pb2_grpc.ChannelControlStub, scenario: Scenario) -> None:
    """Clear the proxy's impairments, set the SNR, add the scenario's impairments."""
    control.ClearImpairments(link_pb2.ClearImpairmentsRequest(), timeout=10)
    control.SetSnr(link_pb2.SetSnrRequest(snr_db=scenario.snr_db), timeout=10)
    for impairment in scenario.impairments:
        control.AddImpairment(link_pb2.AddImpairmentRequest(impairment=impairment), timeout=10)


def run(pipeline, proxy: str, control: str, images, labels, scenarios: list[Scenario], options: DemoOptions,
        progress: Callable[[str], None] | None = None) -> DemoResult:
    """Every scenario in turn over the link at ``proxy``; ``pipeline`` needs the codec (the sender's half)."""
    result = DemoResult()
    started = time.perf_counter()
    with grpc.insecure_channel(control, options=GRPC_OPTIONS) as channel:
        ctl = link_pb2_grpc.ChannelControlStub(channel)
        try:
            for k, scenario in enumerate(scenarios, 1):
                row, sync_ms = run_scenario(pipeline, proxy, ctl, images, labels, scenario, options)
                result.rows.append(row)
                result.sync_ms += sync_ms
                if progress:
                    progress(f"scenario {k}/{len(scenarios)} {scenario.name}: accuracy {row['accuracy']}, "
                             f"SSIM {row['ssim']}, {row['frames_acked']}/{row['frames_sent']} acked, "
                             f"{row['frames_resent']} resent, {row['wall_time_s']:.1f} s")
        finally:
            ctl.ClearImpairments(link_pb2.ClearImpairmentsRequest(), timeout=10)
    result.wall_time_s = time.perf_counter() - started
    return result


def run_scenario(pipeline, proxy: str, ctl: link_pb2_grpc.ChannelControlStub, images, labels, scenario: Scenario,
                 options: DemoOptions) -> tuple[dict, list[float]]:
    """Set the proxy's channel to ``scenario``, send the images in a fresh session -> (its table row,
    its Sync round trips in ms)."""
    from sender.link import LinkSender, SenderOptions
    from sender.report import summarize

    set_channel(ctl, scenario)
    before = ctl.Stats(link_pb2.StatsRequest(), timeout=10)
    with LinkSender(pipeline, proxy, SenderOptions(
            preset=options.preset, session=f"demo-{scenario.name}-{int(time.time())}",
            sync_every=options.sync_every, window=options.window, batch=options.batch,
            ack_timeout_s=options.ack_timeout_s, retry_timeout_s=options.retry_timeout_s,
            evaluation=True, seed=options.seed)) as sender:
        link = sender.run(images, labels)
    after = ctl.Stats(link_pb2.StatsRequest(), timeout=10)
    summary = summarize(link, images, labels)
    row = {"scenario": scenario.name, "channel": scenario.description, "snr_db": scenario.snr_db,
           "effective_snr_db": rounded(after.effective_snr_db, 2),
           "measured_snr_db": summary["snr_db_mean"], "accuracy": summary["accuracy"],
           "ssim": summary["ssim"], "frames_sent": summary["frames_sent"],
           "frames_acked": summary["frames_acked"], "frames_resent": summary["frames_resent"],
           "frames_dropped": after.frames_dropped - before.frames_dropped,
           "sync_count": summary["sync_count"], "sync_p50_ms": summary["sync_p50_ms"],
           "wall_time_s": summary["wall_time_s"], "images_per_s": summary["images_per_s"]}
    return row, [s.latency_ms for s in link.syncs]


def to_dict(result: DemoResult) -> dict:
    return {"scenarios": result.rows, "sync_count": len(result.sync_ms),
            "sync_p50_ms": rounded(percentile(result.sync_ms, 50), 3),
            "sync_p99_ms": rounded(percentile(result.sync_ms, 99), 3),
            "wall_time_s": round(result.wall_time_s, 2)}


COLUMNS = (("scenario", "scenario", "{}"), ("channel", "channel", "{}"), ("SINR dB", "measured_snr_db", "{:.1f}"),
           ("accuracy", "accuracy", "{:.3f}"), ("SSIM", "ssim", "{:.3f}"), ("acked/sent", None, None),
           ("resent", "frames_resent", "{}"), ("dropped", "frames_dropped", "{}"), ("img/s", "images_per_s", "{:.1f}"))


def table(rows: list[dict]) -> str:
    """The scenario rows as an aligned text table."""
    cells = [[title for title, _, _ in COLUMNS]]
    for row in rows:
        line = []
        for title, key, fmt in COLUMNS:
            if key is None:
                line.append(f"{row['frames_acked']}/{row['frames_sent']}")
            else:
                value = row[key]
                line.append("-" if value is None else fmt.format(value))
        cells.append(line)
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
                     for line in cells)
