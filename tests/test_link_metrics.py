"""Prometheus metrics (``--metrics HOST:PORT``) scraped from a running link of real processes.

Receiver and proxy run as services with untrained models (t_D = 2, what is tested is the
plumbing); the sender runs in this process with its collector served the way the CLI serves it.
The compose end-to-end test (test_compose_e2e.py) scrapes the same endpoints from containers.
"""
from __future__ import annotations

import re
import subprocess
import sys
import urllib.request

import pytest

from link_support import ENV, REPO_ROOT, free_port, make_untrained_checkpoints, proxy_service, receiver_service
from link.metrics import MetricsAddressError, parse_address, serve
from protos.diffusec.link.v1 import link_pb2, link_pb2_grpc


def scrape(port: int) -> dict[str, float]:
    """GET /metrics -> {sample name with labels: value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    samples = {}
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$", line)
        if match:
            samples[match.group(1)] = float(match.group(2))
    return samples


@pytest.fixture(scope="module")
def link(tmp_path_factory):
    checkpoints = make_untrained_checkpoints(tmp_path_factory.mktemp("ckpt"))
    logs = tmp_path_factory.mktemp("logs")
    r, p, c, rm, pm = (free_port() for _ in range(5))
    receiver = receiver_service(r, checkpoints, logs, "--t-d", "2", "--metrics", f"127.0.0.1:{rm}")
    proxy = proxy_service(p, r, c, logs, "--snr-db", "15", "--metrics", f"127.0.0.1:{pm}")
    try:
        receiver.start()
        proxy.start()
        receiver.wait_healthy(f"127.0.0.1:{r}")
        proxy.wait_healthy(f"127.0.0.1:{p}")
        proxy.wait_healthy(f"127.0.0.1:{c}")
        yield {"checkpoints": checkpoints, "proxy": f"127.0.0.1:{p}", "control": f"127.0.0.1:{c}",
               "receiver_metrics": rm, "proxy_metrics": pm}
    finally:
        proxy.stop()
        receiver.stop()


def send(link, n: int, metrics_port: int | None = None) -> tuple[object, object]:
    """Send ``n`` sample images through the proxy from this process -> (sender, result)."""
    from sender.link import LinkSender, SenderOptions
    from sender.metrics import SenderCollector
    from shared.data import load_sample
    from shared.pipeline import Pipeline
    from shared.presets import get_preset

    pipeline = Pipeline.load("cifar10", link["checkpoints"], ("codec",))
    data = load_sample(get_preset("cifar10").dataset)
    sender = LinkSender(pipeline, link["proxy"], SenderOptions(window=8, batch=4))
    if metrics_port is not None:
        serve(f"127.0.0.1:{metrics_port}", SenderCollector(sender))
    try:
        return sender, sender.run(data.images[:n], data.labels[:n])
    finally:
        sender.close()


def test_frame_counters_move_with_the_frames(link):
    before_r, before_p = scrape(link["receiver_metrics"]), scrape(link["proxy_metrics"])
    sender_port = free_port()
    _, result = send(link, 12, sender_port)
    assert result.frames_sent == 12 and all(result.acks)
    after_r, after_p, s = scrape(link["receiver_metrics"]), scrape(link["proxy_metrics"]), scrape(sender_port)
    delta = lambda after, before, key: after[key] - before.get(key, 0.0)  # noqa: E731
    assert delta(after_r, before_r, "diffusec_receiver_frames_acked_total") == 12
    assert delta(after_r, before_r, "diffusec_receiver_frames_received_total") == 12
    assert delta(after_p, before_p, "diffusec_proxy_frames_in_total") == 12
    assert delta(after_p, before_p, "diffusec_proxy_frames_forwarded_total") == 12
    assert delta(after_p, before_p, "diffusec_proxy_acks_returned_total") == 12
    assert s["diffusec_sender_frames_sent_total"] == 12 and s["diffusec_sender_frames_acked_total"] == 12
    assert s["diffusec_sender_frames_resent_total"] == result.frames_resent
    assert s["diffusec_sender_sync_seconds_count"] == len(result.syncs)
    # Every micro-batch went through the three stages once; the SNR is the one measured on the pilot.
    batches = delta(after_r, before_r, "diffusec_receiver_batches_total")
    assert batches >= 1
    for stage in ("decode", "purify", "classify"):
        assert delta(after_r, before_r, f'diffusec_receiver_stage_seconds_count{{stage="{stage}"}}') == batches
        assert after_r[f'diffusec_receiver_stage_seconds_sum{{stage="{stage}"}}'] > 0
    assert after_r["diffusec_receiver_measured_snr_db"] == pytest.approx(result.syncs[-1].snr_db, abs=1e-3)
    assert s["diffusec_sender_measured_snr_db"] == pytest.approx(result.syncs[-1].snr_db, abs=1e-3)
    assert after_p["diffusec_proxy_sync_seconds_count"] >= len(result.syncs)
    assert 10 < after_r["diffusec_receiver_measured_snr_db"] < 20     # the proxy's 15 dB


def test_active_impairments_and_effective_snr(link):
    import grpc

    with grpc.insecure_channel(link["control"]) as channel:
        control = link_pb2_grpc.ChannelControlStub(channel)
        control.AddImpairment(link_pb2.AddImpairmentRequest(
            impairment=link_pb2.Impairment(name="jam", jamming=link_pb2.Jamming(pnr_db=10.0))))
        try:
            jammed = scrape(link["proxy_metrics"])
            before = jammed["diffusec_proxy_frames_jammed_total"]
            send(link, 4)
            after = scrape(link["proxy_metrics"])
        finally:
            control.ClearImpairments(link_pb2.ClearImpairmentsRequest())
    assert jammed['diffusec_proxy_impairments_active{kind="jamming"}'] == 1
    assert jammed['diffusec_proxy_impairments_active{kind="drop"}'] == 0
    assert jammed["diffusec_proxy_effective_snr_db"] < jammed["diffusec_proxy_snr_db"] - 5
    assert after["diffusec_proxy_frames_jammed_total"] - before == 4
    assert scrape(link["proxy_metrics"])['diffusec_proxy_impairments_active{kind="jamming"}'] == 0


@pytest.mark.parametrize("module", ["receiver.cli", "channel_proxy.cli", "sender.cli"])
@pytest.mark.parametrize("address", ["9101", "localhost:", "127.0.0.1:70000"])
def test_bad_metrics_address_is_a_usage_error(module, address):
    verb = "run" if module == "sender.cli" else "serve"
    done = subprocess.run([sys.executable, "-m", module, verb, "--metrics", address], cwd=REPO_ROOT, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--metrics" in done.stderr and "host:port" in done.stderr, done.stderr


def test_taken_metrics_port_says_so():
    with pytest.raises(MetricsAddressError, match="cannot listen"):
        port = free_port()
        import socket

        with socket.socket() as holder:
            holder.bind(("127.0.0.1", port))
            holder.listen()
            serve(f"127.0.0.1:{port}", _Empty())


class _Empty:
    def collect(self):
        return iter(())


def test_parse_address():
    assert parse_address("0.0.0.0:9101") == ("0.0.0.0", 9101)
    assert parse_address("[::1]:0") == ("::1", 0)
    with pytest.raises(MetricsAddressError, match="e.g. 127.0.0.1:9101"):
        parse_address("9101")

