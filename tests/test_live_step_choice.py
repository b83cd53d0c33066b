"""`diffusec demo --adaptation`: the receiver's step policy following a proxy SNR schedule, live.

Untrained models (the shipped agent's grid and actor copied beside them), the table policy
(deterministic per SNR, so the expected choices are known), 2-second phases: what is tested is
the schedule, the per-sync record, the settle analysis and the outputs, not accuracy.
"""
from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from diffusec.cli import main as diffusec
from link.live_step_choice import phase_at, schedule_points, settle
from link_support import REPO_ROOT, make_untrained_checkpoints
from shared.agent.policy import TablePolicy

SHIPPED = REPO_ROOT / "checkpoints" / "cifar10"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    out = make_untrained_checkpoints(tmp_path_factory.mktemp("ckpt"))
    for name in ("agent.pt", "agent_grid.json"):
        if not (SHIPPED / name).exists():
            pytest.skip(f"the shipped agent file {SHIPPED / name} is missing")
        shutil.copy(SHIPPED / name, out / name)
    return out


def test_settle_and_schedule_units():
    assert schedule_points(5, (15, -3, 9)) == [(0.0, 15.0), (5.0, -3.0), (10.0, 9.0)]
    assert [phase_at(schedule_points(5), t) for t in (0.0, 4.99, 5.0, 12.0, 99.0)] == [0, 0, 1, 2, 2]
    steady = settle([(16, 25), (5, 49), (10, 50), (8, 50), (9, 50), (9, 50)], tolerance=2)
    assert steady["settled_after_syncs"] == 3 and steady["settled_after_syncs_exact"] == 5 and steady["cycle"] is None
    flip = settle([(5, 25), (21, 50), (3, 50), (22, 50), (3, 50), (22, 50), (3, 50)], tolerance=2)
    assert flip["settled_after_syncs"] is None and flip["cycle"] == [[22, 50], [3, 50]] and flip["cycle_from_sync"] == 2
    assert settle([])["syncs"] == 0 and settle([(1, 1)])["settled_after_syncs"] == 1


def test_live_adaptation_follows_the_schedule(checkpoints, tmp_path):
    phase_s = 2.0
    result = CliRunner().invoke(diffusec, [
        "demo", "--adaptation", "--policy", "table", "--phase-s", str(phase_s), "--checkpoints", str(checkpoints),
        "--n", "16", "--threads", "1", "--data", "sample", "--ack-timeout", "0.5", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (tmp_path / "adaptation-live.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "adaptation-live.json").read_text())["sync_count"] == report["sync_count"]
    assert report["policy"] == "table" and report["receiver"]["sampler"] == "ddim"
    assert [p["snr_db"] for p in report["schedule"]] == [15.0, -3.0, 9.0]
    assert report["frames_acked"] == report["images_sent"] and report["covered_schedule"]
    table = TablePolicy.load(checkpoints, "cifar10")
    for phase in report["phases"]:
        rows = [s for s in report["syncs"] if s["phase"] == phase["phase"]]
        assert len(rows) >= 2, f"phase {phase['phase']} got {len(rows)} syncs"
        for s in rows:
            assert 1 <= s["t_d"] <= 50 and 0 <= s["t_plus"] <= 50
            # The measured SNR follows the schedule (a pilot right at a change may see either SNR).
            if min(abs(s["at_s"] - b) for b in (phase_s, 2 * phase_s)) > 0.1:
                assert abs(s["measured_snr_db"] - s["scheduled_snr_db"]) < 1.5, s
        expected = list(table.lookup(phase["scheduled_snr_db"]))
        chosen = [[s["t_d"], s["t_plus"]] for s in rows]
        assert chosen.count(expected) > len(chosen) / 2, (phase, chosen)
        assert 0 <= phase["accuracy"] <= 1 and phase["frames"] > 0
