"""The proxy's ``adversarial`` impairment without the link: spec checks, state, attack stage,
ChannelControl + CLI in process (untrained cifar10 weights: the plumbing and the power, not accuracy).
"""
from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from channel_proxy.adversary import AttackStage
from channel_proxy.cli import main as proxy_cli
from channel_proxy.impairments import Impairment
from channel_proxy.impairments.kinds.adversarial import Adversarial
from channel_proxy.service import build_servers
from channel_proxy.state import ChannelState
from link_support import free_port, make_untrained_checkpoints
from protos.diffusec.link.v1 import link_pb2
from shared.checkpoints import CheckpointError

L = 768  # cifar10: 64 tokens x 12 symbols


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return make_untrained_checkpoints(tmp_path_factory.mktemp("ckpt"))


@pytest.mark.parametrize("spec, match", [
    (Adversarial(61.0), "-60..60"),
    (Adversarial(math.nan), "finite"),
    (Adversarial(0.0, method="bim"), "fgm, pgd"),
    (Adversarial(0.0, steps=0), "1..1000"),
    (Adversarial(0.0, target=-1), "target"),
])
def test_bad_adversarial_parameters_are_refused(spec, match):
    with pytest.raises(ValueError, match=match):
        spec.check()


def test_message_round_trip():
    for spec in (Adversarial(3.0), Adversarial(-2.5, "pgd", 4, 7, "/x")):
        assert Impairment.from_message(Impairment("a", spec).to_message()).spec == spec
    # An older client's message: empty method and 0 steps mean the defaults.
    assert Impairment.from_message(link_pb2.Impairment(adversarial=link_pb2.Adversarial(pnr_db=1.0))).spec == \
        Adversarial(1.0)


def test_state_loads_the_surrogate_lazily_and_attacks_at_the_exact_pnr(checkpoints, tmp_path):
    state = ChannelState(snr_db=12.0, checkpoints=str(tmp_path / "missing"))
    with pytest.raises(CheckpointError, match="--surrogate DIR"):
        state.add("", Adversarial(6.0))
    assert state.list() == [] and state.attack_latent_length() is None
    assert state.attack(torch.randn(2, L)) is None
    assert state.stats()["frames_attacked"] == 0 and state.stats()["attack_pnr_db"] is None

    with pytest.raises(ValueError, match="10 classes"):
        state.add("", Adversarial(6.0, target=10, surrogate=str(checkpoints)))
    state.add("", Adversarial(6.0, surrogate=str(checkpoints)))
    assert state.attack_latent_length() == L
    latents = torch.randn(5, L)
    out = state.attack(latents)
    power = (out - latents).double().pow(2).mean(1)
    torch.testing.assert_close(power, torch.full((5,), 10 ** ((6.0 - 12.0) / 10), dtype=torch.float64), rtol=1e-5,
                               atol=0)
    stats = state.stats()
    assert stats["frames_attacked"] == 5 and stats["attack_pnr_db"] == pytest.approx(6.0, abs=1e-4)

    state.set_snr(2.0)  # the PNR follows the SNR: same 6 dB above the (now larger) noise power
    state.attack(torch.randn(3, L))
    assert state.stats()["attack_pnr_db"] == pytest.approx(6.0, abs=1e-4)

    # Frames that are no channel output pass unattacked (the receiver refuses them) and leave the PNR alone.
    mixed = torch.randn(3, L)
    mixed[0, 4], mixed[1, :] = float("nan"), 3e38
    out = state.attack(mixed)
    assert torch.equal(out[:2].isnan(), mixed[:2].isnan()) and torch.equal(out[1], mixed[1])
    assert not torch.equal(out[2], mixed[2]) and state.stats()["frames_attacked"] == 9
    assert state.stats()["attack_pnr_db"] == pytest.approx(6.0, abs=1e-4)
    state.remove("adversarial")
    assert state.attack_latent_length() is None and state.attack(latents) is None


def test_each_transmit_stream_gets_its_own_reproducible_attack_generator():
    first = [ChannelState(seed=7).attack_generator().initial_seed() for _ in range(2)]
    state = ChannelState(seed=7)
    streams = [state.attack_generator().initial_seed() for _ in range(3)]
    assert len(set(streams)) == 3 and streams[0] == first[0] == first[1]


def test_attack_stage_batches_and_passes_odd_frames_unchanged():
    calls, out = [], []
    odd = link_pb2.Frame(frame_id=99, latent=b"\0" * 12)

    def attack(latents):
        calls.append(latents.shape[0])
        return latents + 1.0

    gate = threading.Event()
    stage = AttackStage(lambda x: (gate.wait(10), attack(x))[1], lambda f, d: out.append((f, d)), lambda: 4)
    frames = [link_pb2.Frame(frame_id=i, latent=np.full(4, i, "<f4").tobytes()) for i in range(5)]
    for i, frame in enumerate(frames):
        stage.put(frame, 0.01 * i)
    stage.put(odd, 0.0)
    gate.set()
    stage.close()
    assert sum(calls) == 5 and len(out) == 6
    by_id = {f.frame_id: (f, d) for f, d in out}
    for i in range(5):
        assert np.frombuffer(by_id[i][0].latent, "<f4").tolist() == [i + 1.0] * 4 and by_id[i][1] == 0.01 * i
    assert by_id[99][0].latent == b"\0" * 12


def test_control_service_and_cli(checkpoints, tmp_path):
    state = ChannelState(snr_db=10.0, checkpoints=str(checkpoints))
    control = f"127.0.0.1:{free_port()}"
    link, ctl, channel, _, _ = build_servers(state, f"127.0.0.1:{free_port()}", control, f"127.0.0.1:{free_port()}")
    runner = CliRunner()

    def cli(*args):
        return runner.invoke(proxy_cli, ["--control", control, *args])

    try:
        missing = cli("attack", "add", "adversarial", "--pnr-db", "3", "--surrogate", str(tmp_path / "none"))
        assert missing.exit_code == 2 and "FAILED_PRECONDITION" in missing.output and "codec.pt" in missing.output
        wrong = cli("attack", "add", "jamming", "--pnr-db", "3", "--method", "pgd")
        assert wrong.exit_code == 2 and "jamming takes --pnr-db, not --method" in wrong.output
        assert cli("attack", "add", "adversarial").exit_code == 2  # needs --pnr-db

        added = cli("attack", "add", "adversarial", "--pnr-db", "3", "--method", "pgd", "--steps", "2", "--target", "1")
        assert added.exit_code == 0, added.output
        assert "adversarial (adversarial pnr_db=3 method=pgd steps=2 target=1)" in added.output
        plain = cli("attack", "add", "adversarial", "--name", "fgm", "--pnr-db", "0")
        assert plain.exit_code == 0 and "target" not in plain.output, plain.output
        listed = json.loads(cli("attack", "ls", "--json").output)
        assert listed == [
            {"name": "adversarial", "kind": "adversarial", "pnr_db": 3.0, "method": "pgd", "steps": 2, "target": 1,
             "surrogate": ""},
            {"name": "fgm", "kind": "adversarial", "pnr_db": 0.0, "method": "fgm", "steps": 10, "target": None,
             "surrogate": ""}]
        stats = json.loads(cli("stats", "--json").output)
        assert stats["frames_attacked"] == 0 and stats["attack_pnr_db"] is None and stats["impairments"] == 2
        latents = torch.randn(2, L, generator=torch.Generator().manual_seed(0))
        out = state.attack(latents)
        stats = json.loads(cli("stats", "--json").output)
        # Two stacked perturbations (3 dB and 0 dB): the PNR is that of their sum, as added.
        achieved = 10 * math.log10((out - latents).double().pow(2).mean().item() / 10 ** (-10.0 / 10))
        assert stats["frames_attacked"] == 2 and stats["attack_pnr_db"] == pytest.approx(achieved, abs=1e-6)
        text = cli("stats").output
        assert "frames_attacked    2" in text and "attack_pnr_db" in text
    finally:
        link.stop(0)
        ctl.stop(0)
        channel.close()
