"""The in-process pipeline and `diffusec eval`: JSON contract, validation, clear errors."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from diffusec.cli import main
from shared.checkpoints import default_checkpoint_dir
from shared.pipeline import Pipeline

REQUIRED = {"preset", "system", "snr_db", "n", "accuracy", "ssim", "t_d", "t_plus", "bandwidth_ratio"}
SHIPPED = default_checkpoint_dir("cifar10")




def run_eval(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["eval", "--data", "sample", "--threads", "1", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("system", ["classifier", "vit", "plain"])
def test_eval_json_contract(untrained_checkpoints, system):
    code, out = run_eval("--system", system, "--n", "6", "--t-d", "3", "--json",
                         "--checkpoints", str(untrained_checkpoints))
    assert code == 0, out
    payload = json.loads(out.strip().splitlines()[-1])
    assert REQUIRED <= payload.keys()
    assert payload["system"] == system and payload["n"] == 6 and payload["preset"] == "cifar10"
    assert 0.0 <= payload["accuracy"] <= 1.0
    assert payload["bandwidth_ratio"] == pytest.approx(0.25)
    if system == "classifier":
        assert payload["ssim"] is None and payload["snr_db"] is None
    else:
        assert 0.0 <= payload["ssim"] <= 1.0 and payload["snr_db"] == 15.0
    assert (payload["t_d"] == 3) == (system == "plain")


def test_eval_is_repeatable_with_a_seed(untrained_checkpoints):
    args = ("--system", "plain", "--n", "4", "--t-d", "2", "--json", "--seed", "5", "--checkpoints", str(untrained_checkpoints))
    first, second = run_eval(*args), run_eval(*args)
    assert json.loads(first[1].splitlines()[-1])["ssim"] == json.loads(second[1].splitlines()[-1])["ssim"]


def test_eval_rejects_out_of_range_timesteps(untrained_checkpoints):
    code, out = run_eval("--t-d", "1001", "--checkpoints", str(untrained_checkpoints))
    assert code != 0 and "1001" in out
    code, out = run_eval("--t-d", "600", "--t-plus", "600", "--checkpoints", str(untrained_checkpoints))
    assert code == 2 and "exceeds T = 1000" in out


def test_eval_missing_checkpoint_says_how_to_make_it(tmp_path):
    code, out = run_eval("--system", "vit", "--checkpoints", str(tmp_path))
    assert code == 2
    assert "no codec checkpoint" in out and "diffusec train joint" in out


def test_eval_falls_back_to_embedded_sample(untrained_checkpoints, tmp_path):
    result = CliRunner().invoke(main, ["eval", "--system", "classifier", "--n", "3", "--json", "--threads", "1",
                                       "--data-root", str(tmp_path), "--checkpoints", str(untrained_checkpoints)])
    assert result.exit_code == 0, result.output
    assert "embedded sample" in json.loads(result.output.strip().splitlines()[-1])["data"]
    strict = CliRunner().invoke(main, ["eval", "--system", "classifier", "--data", "test", "--data-root", str(tmp_path),
                                       "--checkpoints", str(untrained_checkpoints)])
    assert strict.exit_code == 2 and str(tmp_path) in strict.output


def test_purify_mixes_timesteps_per_image(untrained_checkpoints):
    """Frames diffused with different t_D share one receiver batch; t_P = 0 passes through."""
    pipe = Pipeline.load("cifar10", untrained_checkpoints)
    x_hat = torch.rand(3, 3, 32, 32) * 2 - 1
    out = pipe.purify(x_hat, torch.tensor([0, 2, 5]), generator=torch.Generator().manual_seed(0))
    assert out.shape == x_hat.shape and 0 <= out.min() and out.max() <= 1
    assert torch.allclose(out[0], ((x_hat[0] + 1) / 2).clamp(0, 1))
    # each row is purified at its own t_P: with the deterministic strided sampler, the same as alone
    mixed = pipe.purify(x_hat, torch.tensor([0, 2, 5]), sampler="ddim", steps=2)
    for row, t in ((1, 2), (2, 5)):
        alone = pipe.purify(x_hat[row:row + 1], t, sampler="ddim", steps=2)
        assert torch.allclose(alone[0], mixed[row], atol=1e-5)
        other = pipe.purify(x_hat[row:row + 1], 7 - t, sampler="ddim", steps=2)
        assert not torch.equal(alone, other)          # and the row's t_P matters


def test_plain_diffuses_at_t_d_and_purifies_at_t_d_plus_t_plus(untrained_checkpoints, monkeypatch):
    """Asymmetric diffusion (IV-B): the sender diffuses t_D steps, the receiver denoises t_P = t_D + t_plus."""
    pipe = Pipeline.load("cifar10", untrained_checkpoints)
    first_t: list[list[int]] = []
    real = pipe.denoiser.predict_x0

    def recording(x_t, t, schedule):
        first_t.append(t.tolist())
        return real(x_t, t, schedule)

    monkeypatch.setattr(pipe.denoiser, "predict_x0", recording)
    pipe.run("plain", torch.rand(2, 3, 32, 32), snr_db=10.0, t_d=7, t_plus=4, sampler="ddpm",
             generator=torch.Generator().manual_seed(0))
    # the DDPM chain calls the network at t_P, t_P - 1, ..., 1
    assert [t[0] for t in first_t] == list(range(11, 0, -1)) and all(t[0] == t[1] for t in first_t)


@pytest.mark.skipif(not (SHIPPED / "classifier.pt").exists(), reason="no shipped cifar10 checkpoints")
def test_shipped_checkpoints_are_trained_and_have_manifests():
    """The shipped weights are real: far above chance on the embedded sample of the test split."""
    code, out = run_eval("--system", "classifier", "--n", "200", "--json")
    assert code == 0, out
    assert json.loads(out.strip().splitlines()[-1])["accuracy"] > 0.7
    for kind in ("codec", "denoiser", "classifier"):
        manifest = json.loads((SHIPPED / f"{kind}.json").read_text())
        assert manifest["preset"] == "cifar10" and manifest["metrics"] and manifest["data_checksum_md5"]
    # issue 14's budget for the shipped cifar10 weights: at most 60 MB together
    assert sum(p.stat().st_size for p in SHIPPED.glob("*.pt")) <= 60 * 1000 * 1000


def test_eval_grid_draws_originals_and_received_images(untrained_checkpoints, tmp_path):
    grid = tmp_path / "grid.png"
    code, out = run_eval("--system", "vit", "--n", "4", "--json", "--grid", str(grid),
                         "--checkpoints", str(untrained_checkpoints))
    assert code == 0, out
    assert json.loads(out.strip().splitlines()[-1])["grid"] == str(grid)
    from PIL import Image

    with Image.open(grid) as image:   # two rows (original, received) of 4 tiles, 3x scaled
        assert image.width > 4 * 32 * 3 and image.height > 2 * 32 * 3
