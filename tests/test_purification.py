"""`diffusec eval purification`: the survival ratio, shared noise, the JSON contract and the plot."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from diffusec.cli import main
from shared.purification import survival_ratio




def run(checkpoints: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["eval", "purification", "--data", "sample", "--threads", "1",
                                       "--checkpoints", str(checkpoints), *args])
    return result.exit_code, result.output


def test_survival_ratio_is_the_share_of_the_perturbation_that_comes_through():
    x = torch.rand(3, 3, 8, 8)
    d = (torch.rand(3, 3, 8, 8) - 0.5) * 0.1
    purified_clean = torch.rand(3, 3, 8, 8)
    assert torch.allclose(survival_ratio(purified_clean, purified_clean + d, x, x + d), torch.ones(3))
    assert torch.allclose(survival_ratio(purified_clean, purified_clean + 0.25 * d, x, x + d), torch.full((3,), 0.25))
    assert torch.equal(survival_ratio(purified_clean, purified_clean, x, x + d), torch.zeros(3))
    assert survival_ratio(purified_clean, purified_clean, x, x).isnan().all()   # no perturbation: undefined


def test_json_contract_and_plot(untrained_checkpoints, tmp_path):
    plot = tmp_path / "purification.png"
    code, out = run(untrained_checkpoints, "--t", "3,6", "--n", "6", "--sampler", "ddim", "--attack-steps", "2",
                    "--plot", str(plot), "--json")
    assert code == 0, out
    payload = json.loads(out.strip().splitlines()[-1])
    assert [p["t"] for p in payload["points"]] == [3, 6]
    assert payload["n"] == 6 and payload["link_snr_db"] is None and payload["sampler_steps"] == 5
    for point in payload["points"]:
        assert 0 <= point["clean_accuracy"] <= 1 and 0 <= point["attacked_accuracy"] <= 1
        assert point["gap"] == pytest.approx(point["attacked_accuracy"] - point["clean_accuracy"], abs=1e-3)
        assert point["survival"] > 0
    assert plot.stat().st_size > 1000 and payload["plot"] == str(plot)


def test_clean_and_attacked_share_every_noise_draw(untrained_checkpoints):
    """With eps = 0 the attacked run is the clean run, draw for draw, through the link and the DDPM chain."""
    code, out = run(untrained_checkpoints, "--t", "4", "--n", "5", "--eps", "0", "--link", "--snr-db", "0", "--json")
    assert code == 0, out
    (point,) = json.loads(out.strip().splitlines()[-1])["points"]
    assert point["gap"] == 0 and point["ssim_clean"] == point["ssim_attacked"] and point["survival"] is None


@pytest.mark.parametrize("ts", ["0", "20,x", "1001", ""])
def test_bad_timesteps_are_refused(untrained_checkpoints, ts):
    code, out = run(untrained_checkpoints, "--t", ts)
    assert code == 2 and "--t" in out


def test_text_table_shows_no_survival_when_nothing_was_perturbed(untrained_checkpoints):
    code, out = run(untrained_checkpoints, "--t", "2", "--n", "3", "--eps", "0", "--sampler", "ddim")
    assert code == 0, out
    row = out.splitlines()[3].split()
    assert row[0] == "2" and row[4] == "-"
