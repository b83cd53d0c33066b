"""Wireless attacks switched on and off through the proxy CLI during one running sender session.

Three real processes' worth of link: a receiver and a channel proxy as subprocesses on loopback,
and a :class:`sender.link.LinkSender` driven in this process (one ``run`` over every frame). The
shipped cifar10 models are used -- untrained ones are at chance accuracy, so an attack could not
move it. When the sender has had a phase's worth of acks, it is held (inside its ack callback)
while ``diffusec-proxy attack add|rm`` changes the channel, so every frame sent after that is
under the new condition. Frames sent around a switch (a window either side) are not scored.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from link_support import ENV, REPO_ROOT, free_port, proxy_service, receiver_service

SHIPPED = REPO_ROOT / "checkpoints" / "cifar10"
pytestmark = pytest.mark.skipif(not all((SHIPPED / f"{k}.pt").exists() for k in ("codec", "denoiser", "classifier")),
                                reason="needs the shipped checkpoints/cifar10 models")

SNR_DB = 15.0
PHASE = 48          # frames per phase
WINDOW = 8          # sender window (and batch): the frames whose condition is uncertain at a switch


def proxy_cli(control: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "channel_proxy.cli", "--control", control, *args], cwd=REPO_ROOT,
                          env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"diffusec-proxy {' '.join(args)}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    logs = tmp_path_factory.mktemp("logs")
    r_port, p_port, c_port = free_port(), free_port(), free_port()
    receiver = receiver_service(r_port, SHIPPED, logs, "--t-d", "2", "--max-batch", str(WINDOW))
    proxy = proxy_service(p_port, r_port, c_port, logs, "--snr-db", str(SNR_DB), "--preset", "cifar10",
                          "--checkpoints", str(SHIPPED))
    try:
        receiver.start()
        proxy.start()
        receiver.wait_healthy(f"127.0.0.1:{r_port}")
        proxy.wait_healthy(f"127.0.0.1:{p_port}")
        proxy.wait_healthy(f"127.0.0.1:{c_port}")
        yield f"127.0.0.1:{p_port}", f"127.0.0.1:{c_port}", logs
    finally:
        proxy.stop()
        receiver.stop()


# (condition while this phase's frames are sent, CLI args that start the next phase)
PHASES = [("clean", ["attack", "add", "adversarial", "--pnr-db", "10"]),
          ("adversarial", ["attack", "rm", "adversarial"]),
          ("clean again", ["attack", "add", "jamming", "--pnr-db", "30"]),
          ("jamming", ["attack", "clear"]),
          ("clean at the end", None)]


def send_with_switches(proxy_addr: str, control: str, logs: Path, images: torch.Tensor, labels: torch.Tensor):
    """One LinkSender run over every image; after each phase's acks the sender is held while the
    proxy CLI starts the next phase -> its LinkResult."""
    from sender.link import LinkSender, SenderOptions
    from shared.pipeline import Pipeline

    switch_wanted, switch_done = threading.Event(), threading.Event()
    acked = [0]

    def on_ack(count: int) -> None:
        # Called by the sender for every new ack, under its lock: blocking here holds the sender.
        acked[0] += count
        if acked[0] % PHASE == 0 and acked[0] // PHASE < len(PHASES):
            switch_wanted.set()
            switch_done.wait(120)
            switch_done.clear()

    pipeline = Pipeline.load("cifar10", SHIPPED, ("codec",))
    sender = LinkSender(pipeline, proxy_addr, SenderOptions(window=WINDOW, batch=WINDOW, seed=0), on_ack=on_ack)
    outcome: dict = {}
    thread = threading.Thread(target=lambda: outcome.update(result=sender.run(images, labels)), daemon=True)
    thread.start()
    try:
        for _, switch in PHASES[:-1]:
            assert switch_wanted.wait(120), f"the sender stalled; logs in {logs}"
            switch_wanted.clear()
            try:
                proxy_cli(control, *switch)
            finally:
                switch_done.set()
        thread.join(120)
    finally:
        sender.close()
    assert not thread.is_alive() and "result" in outcome, f"the sender did not finish; logs in {logs}"
    return outcome["result"]


def phase_accuracy(result, labels: torch.Tensor) -> dict[str, float]:
    """Top-1 accuracy per phase, leaving out the frames within a window of a switch: they may have
    crossed the proxy before or after it."""
    accuracy = {}
    for p, (name, _) in enumerate(PHASES):
        lo = p * PHASE + (WINDOW if p else 0)
        hi = (p + 1) * PHASE - WINDOW
        hits = [result.acks[i].predicted_class == int(labels[i]) for i in range(lo, hi)]
        accuracy[name] = sum(hits) / len(hits)
    return accuracy


def test_attacks_switched_during_one_session_move_the_accuracy(stack):
    from shared.data import load_sample

    proxy_addr, control, logs = stack
    sample = load_sample("cifar10")
    order = torch.randperm(len(sample), generator=torch.Generator().manual_seed(0))[:PHASE * len(PHASES)]
    images, labels = sample.images[order], sample.labels[order]
    result = send_with_switches(proxy_addr, control, logs, images, labels)
    assert all(ack is not None for ack in result.acks)

    accuracy = phase_accuracy(result, labels)
    clean = min(accuracy["clean"], accuracy["clean again"], accuracy["clean at the end"])
    assert clean >= 0.6, accuracy
    assert accuracy["adversarial"] <= clean - 0.3, accuracy
    assert accuracy["jamming"] <= clean - 0.3, accuracy

    stats = json.loads(proxy_cli(control, "stats", "--json"))
    # Every frame of the adversarial phase, give or take the frames in flight at the switches.
    assert PHASE - 2 * WINDOW <= stats["frames_attacked"] <= PHASE + 2 * WINDOW, stats
    assert stats["attack_pnr_db"] == pytest.approx(10.0, abs=1e-3), stats
    assert stats["frames_jammed"] >= PHASE - 2 * WINDOW and stats["impairments"] == 0, stats
    print(json.dumps({"accuracy": accuracy, "frames_attacked": stats["frames_attacked"],
                      "attack_pnr_db": stats["attack_pnr_db"], "wall_s": result.wall_time_s}))
