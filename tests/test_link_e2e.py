"""The link end to end: receiver, channel proxy and sender as real processes on loopback ports.

Conditions are set with the proxy's CLI; the sender's JSON is checked. Untrained models and
t_D = 2 keep it fast; what is tested is the plumbing, not accuracy.
"""
from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch
from PIL import Image

from link_support import (ENV, REPO_ROOT, Service, free_port, last_json, make_untrained_checkpoints, proxy_service,
                          receiver_service, sender_command)
from protos.diffusec.link.v1 import link_pb2, link_pb2_grpc
from protos.wire import symbols_to_bytes
from shared.channel import pilot_sequence

REQUIRED = {"frames_sent", "frames_acked", "accuracy", "ssim", "sync_count", "t_d", "sync_p50_ms"}


@dataclass
class Stack:
    checkpoints: Path
    logs: Path
    receiver: Service
    proxy: Service
    receiver_port: int
    proxy_addr: str
    control_addr: str
    control: link_pb2_grpc.ChannelControlStub
    link: link_pb2_grpc.LinkStub

    def restart_receiver(self, kill: bool = True) -> None:
        self.receiver.kill() if kill else self.receiver.stop()
        self.receiver = receiver_service(self.receiver_port, self.checkpoints, self.logs, "--t-d", "2").start()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    checkpoints = make_untrained_checkpoints(tmp_path_factory.mktemp("ckpt"))
    logs = tmp_path_factory.mktemp("logs")
    r_port, p_port, c_port = free_port(), free_port(), free_port()
    receiver = receiver_service(r_port, checkpoints, logs, "--t-d", "2")
    proxy = proxy_service(p_port, r_port, c_port, logs, "--snr-db", "15")
    channels = []
    try:
        receiver.start()
        proxy.start()
        receiver.wait_healthy(f"127.0.0.1:{r_port}")
        proxy.wait_healthy(f"127.0.0.1:{p_port}")
        proxy.wait_healthy(f"127.0.0.1:{c_port}")
        channels = [grpc.insecure_channel(f"127.0.0.1:{c_port}"), grpc.insecure_channel(f"127.0.0.1:{p_port}")]
        s = Stack(checkpoints, logs, receiver, proxy, r_port, f"127.0.0.1:{p_port}", f"127.0.0.1:{c_port}",
                  link_pb2_grpc.ChannelControlStub(channels[0]), link_pb2_grpc.LinkStub(channels[1]))
        yield s
    finally:
        for channel in channels:
            channel.close()
        proxy.stop()
        # the restart test may have replaced the receiver
        (s.receiver if "s" in locals() else receiver).stop()
        receiver.stop()


@pytest.fixture
def clean(stack):
    """Every test starts and ends with no impairments at 15 dB."""
    stack.control.ClearImpairments(link_pb2.ClearImpairmentsRequest())
    stack.control.SetSnr(link_pb2.SetSnrRequest(snr_db=15.0))
    yield stack
    stack.control.ClearImpairments(link_pb2.ClearImpairmentsRequest())
    stack.control.SetSnr(link_pb2.SetSnrRequest(snr_db=15.0))


def proxy_cli(stack: Stack, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "channel_proxy.cli", "--control", stack.control_addr, *args],
                            cwd=REPO_ROOT, env=ENV, capture_output=True, text=True, timeout=60)
    assert (result.returncode == 0) == ok, result.stdout + result.stderr
    return result


def send(stack: Stack, *args: str, timeout: float = 120) -> dict:
    result = subprocess.run(sender_command(stack.proxy_addr, stack.checkpoints, *args), cwd=REPO_ROOT, env=ENV,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return last_json(result.stdout)


def stats(stack: Stack) -> link_pb2.StatsReply:
    return stack.control.Stats(link_pb2.StatsRequest())


def test_sender_over_the_proxy(clean):
    before = stats(clean)
    out = send(clean, "--n", "16", "--sync-every", "8", "--batch", "8")
    assert REQUIRED <= out.keys()
    assert out["frames_sent"] == out["frames_acked"] == 16 and out["frames_resent"] == 0
    assert out["sync_count"] == 2 and out["t_d"] == 2 and out["t_p_used"] == [2]
    assert 0.0 <= out["accuracy"] <= 1.0 and 0.0 <= out["ssim"] <= 1.0 and out["sync_p50_ms"] > 0
    assert abs(out["snr_db"] - 15.0) < 1.0  # measured on the pilot through the proxy's AWGN
    after = stats(clean)
    assert after.frames_forwarded - before.frames_forwarded == 16
    assert after.syncs_forwarded - before.syncs_forwarded == 2 and after.acks_returned - before.acks_returned == 16


def test_proxy_cli_verbs(clean, tmp_path):
    assert "added jam" in proxy_cli(clean, "attack", "add", "jamming", "--pnr-db", "3", "--name", "jam").stdout
    proxy_cli(clean, "attack", "add", "drop", "--rate", "0.25")
    proxy_cli(clean, "attack", "add", "delay", "--ms", "5", "--jitter-ms", "1")
    listed = last_json(proxy_cli(clean, "attack", "ls", "--json").stdout)
    assert listed == [{"name": "jam", "kind": "jamming", "pnr_db": 3.0}, {"name": "drop", "kind": "drop", "rate": 0.25},
                      {"name": "delay", "kind": "delay", "ms": 5.0, "jitter_ms": 1.0}]
    assert "already" in proxy_cli(clean, "attack", "add", "drop", "--rate", "0.1", "--name", "jam", ok=False).stderr
    assert "0..1" in proxy_cli(clean, "attack", "add", "drop", "--rate", "2", ok=False).stderr
    assert "not --ms" in proxy_cli(clean, "attack", "add", "jamming", "--ms", "3", ok=False).stderr
    proxy_cli(clean, "attack", "rm", "drop")
    assert "present: jam, delay" in proxy_cli(clean, "attack", "rm", "drop", ok=False).stderr
    assert "snr -3 dB" in proxy_cli(clean, "snr", "set", "-3").stdout  # a negative SNR is a value, not an option
    assert stats(clean).snr_db == -3.0
    assert "not a valid float" in proxy_cli(clean, "snr", "set", "minus3", ok=False).stderr
    proxy_cli(clean, "snr", "set", "9")
    now = last_json(proxy_cli(clean, "stats", "--json").stdout)
    assert now["snr_db"] == 9.0 and now["impairments"] == 2 and not now["snr_scheduled"]
    assert now["effective_snr_db"] == pytest.approx(9 - 10 * np.log10(1 + 10 ** 0.3))
    trace = tmp_path / "trace.csv"
    trace.write_text("seconds,snr_db\n0,-3\n600,12\n")
    assert "now -3 dB" in proxy_cli(clean, "snr", "schedule", str(trace)).stdout
    assert stats(clean).snr_scheduled and stats(clean).snr_db == -3.0
    assert "removed 2" in proxy_cli(clean, "attack", "clear").stdout
    assert "no impairments" in proxy_cli(clean, "attack", "ls").stdout
    down = subprocess.run([sys.executable, "-m", "channel_proxy.cli", "--control", f"127.0.0.1:{free_port()}", "stats"],
                          cwd=REPO_ROOT, env=ENV, capture_output=True, text=True, timeout=60)
    assert down.returncode != 0 and "is `diffusec-proxy serve` running?" in down.stderr


def test_impairments_reach_the_link(clean):
    proxy_cli(clean, "attack", "add", "drop", "--rate", "0.3")
    proxy_cli(clean, "attack", "add", "delay", "--ms", "20", "--jitter-ms", "10")
    proxy_cli(clean, "attack", "add", "jamming", "--pnr-db", "10")
    before = stats(clean)
    out = send(clean, "--n", "16", "--ack-timeout", "0.4", "--window", "8", "--batch", "8", "--no-eval")
    after = stats(clean)
    assert out["frames_sent"] == out["frames_acked"] == 16  # every dropped frame was resent
    assert out["frames_resent"] >= after.frames_dropped - before.frames_dropped > 0
    assert after.frames_jammed - before.frames_jammed >= 16 and out["ssim"] is None
    # The pilot goes through the same channel: the receiver measures the SINR.
    assert out["snr_db"] == pytest.approx(after.effective_snr_db, abs=1.0) and out["snr_db"] < 6.0


def test_snr_estimate_follows_the_proxy(clean):
    for k, snr in enumerate((-6.0, 3.0, 18.0)):
        clean.control.SetSnr(link_pb2.SetSnrRequest(snr_db=snr))
        pilot = symbols_to_bytes(pilot_sequence("probe", k, 4096))
        reply = clean.link.Sync(link_pb2.SyncRequest(session="probe", sequence=k, pilot=pilot), timeout=10)
        assert reply.snr_db == pytest.approx(snr, abs=0.5) and reply.epoch == k + 1


def test_errors_are_relayed_by_the_proxy(clean):
    reply = clean.link.Sync(link_pb2.SyncRequest(session="bad", pilot=symbols_to_bytes(torch.ones(64))), timeout=10)
    bad = link_pb2.Frame(frame_id=0, session="bad", epoch=reply.epoch + 5, t_d=2,
                         latent=symbols_to_bytes(torch.zeros(768)), shape=[768])
    [ack] = clean.link.Transmit(iter([bad]), timeout=10)
    assert ack.error.code == "OUT_OF_RANGE" and ack.error.reason == "UNKNOWN_EPOCH"
    with pytest.raises(grpc.RpcError) as err:
        clean.link.Sync(link_pb2.SyncRequest(session="", pilot=symbols_to_bytes(torch.ones(64))), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "session is empty" in err.value.details()


def test_sender_images_folder(clean, tmp_path):
    folder = tmp_path / "mine"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / "sub" / "b.jpg")
    Image.fromarray(rng.integers(0, 255, (50, 50), dtype=np.uint8), "L").save(folder / "c.jpeg")
    (folder / "notes.txt").write_text("not an image")
    out = send(clean, "--images", str(folder), "--n", "10")
    assert out["frames_acked"] == 3 and out["accuracy"] is None and 0 <= out["ssim"] <= 1
    assert [p["file"] for p in out["predictions"]] == ["a.png", "c.jpeg", "sub/b.jpg"]
    assert all(0 <= p["class"] < 10 for p in out["predictions"])


def test_receiver_restart_mid_run_loses_no_frame(clean):
    """SIGKILL the receiver mid-run and start a new one: the sender re-syncs and resends."""
    proxy_cli(clean, "attack", "add", "delay", "--ms", "60")  # stretch the run to a few seconds
    base = stats(clean).acks_returned
    n = 48
    sender = subprocess.Popen(sender_command(clean.proxy_addr, clean.checkpoints, "--n", str(n), "--window", "4",
                                             "--batch", "4", "--ack-timeout", "1", "--retry-timeout", "60"),
                              cwd=REPO_ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while stats(clean).acks_returned - base < 8:
            assert sender.poll() is None and time.monotonic() < deadline, "the sender finished before the restart"
            time.sleep(0.05)
        clean.restart_receiver(kill=True)
        stdout, stderr = sender.communicate(timeout=90)
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait()
    assert sender.returncode == 0, stdout + stderr
    out = last_json(stdout)
    assert out["frames_acked"] == out["frames_sent"] == n
    assert out["reconnects"] >= 1 and out["sync_count"] >= 2
    clean.receiver.wait_healthy(f"127.0.0.1:{clean.receiver_port}")


def test_sync_without_a_deadline_goes_through_the_proxy(clean):
    """A client that sets no deadline: the proxy must not forward its 'time remaining' (about 9e18 s)."""
    pilot = symbols_to_bytes(pilot_sequence("no-deadline", 0, 256))
    reply = clean.link.Sync(link_pb2.SyncRequest(session="no-deadline", pilot=pilot))
    assert reply.epoch == 1
