"""Training: deterministic batches, resumable loop, the `diffusec train` CLI end to end, and DDP."""
from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from conftest import NUM_CLASSES, TEST_PER_CLASS, TRAIN_PER_CLASS, write_class_tree
from diffusec.cli import main
from shared.data import load_split
from shared.training.distributed import Dist
from shared.training.loop import BatchPlan, cosine_with_warmup, linear_warmup_decay, run_loop

REPO = Path(__file__).resolve().parents[1]
N_TRAIN = NUM_CLASSES * TRAIN_PER_CLASS
N_VAL = N_TRAIN // 10                     # PhaseContext holds out min(2000, N/10)
DESCRIPTION = f"CIFAR-10 (JPEG q75 copy), train split minus {N_VAL} held-out"


# --- (a) BatchPlan ------------------------------------------------------------------------------

def test_batch_plan_is_a_pure_function_of_step():
    a, b = BatchPlan(1000, 64, 7, Dist()), BatchPlan(1000, 64, 7, Dist())
    for step in (0, 5, 15, 16, 40):
        assert torch.equal(a.indices(step), b.indices(step))
        assert torch.equal(torch.randn(3, generator=a.generator(step)), torch.randn(3, generator=b.generator(step)))
    assert not torch.equal(a.indices(0), BatchPlan(1000, 64, 8, Dist()).indices(0))


def test_batch_plan_epoch_is_a_permutation_and_epochs_differ():
    plan = BatchPlan(100, 10, 0, Dist())
    assert plan.steps_per_epoch == 10 and plan.steps_for(2.5) == 25 and plan.steps_for(0.01) == 1
    epoch0 = torch.cat([plan.indices(s) for s in range(10)])
    epoch1 = torch.cat([plan.indices(s) for s in range(10, 20)])
    assert sorted(epoch0.tolist()) == list(range(100)) == sorted(epoch1.tolist())
    assert not torch.equal(epoch0, epoch1)


def test_batch_plan_ranks_partition_the_global_batch():
    world = 3
    single = BatchPlan(500, 48, 1, Dist())
    ranks = [BatchPlan(500, 48, 1, Dist(rank=r, world=world)) for r in range(world)]
    for step in (0, 3, 11, 12):
        parts = [r.indices(step) for r in ranks]
        merged = torch.cat(parts)
        assert len(merged) == 48 and len(set(merged.tolist())) == 48
        assert set(merged.tolist()) == set(single.indices(step).tolist())
        assert all(len(p) == 16 for p in parts)
    g0, g1 = ranks[0].generator(4), ranks[1].generator(4)
    assert not torch.equal(torch.rand(4, generator=g0), torch.rand(4, generator=g1))


def test_lr_schedules():
    f = linear_warmup_decay(100, 0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0) and f(100) == 0.0
    assert all(0 <= f(s) <= 1 for s in range(101))
    g = cosine_with_warmup(100, 10)
    assert g(9) == pytest.approx(1.0) and g(10) == pytest.approx(1.0) and g(100) == pytest.approx(0.0, abs=1e-9)


# --- (c) resumable loop -------------------------------------------------------------------------

class Interrupt(Exception):
    pass


def toy_run(resume_path: Path, total: int, stop_at: int | None = None, save_every_s: float = 0.0):
    """Train a linear model with momentum SGD and a LR schedule; optionally die at ``stop_at``."""
    torch.manual_seed(123)             # the same fresh init every call, like a restarted process
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup_decay(total))
    plan = BatchPlan(64, 8, 0, Dist())
    data = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    target = data.sum(1, keepdim=True)
    ran: list[int] = []

    def step_fn(step: int) -> dict[str, float]:
        if step == stop_at:
            raise Interrupt
        ran.append(step)
        idx = plan.indices(step)
        x = data[idx] + 0.01 * torch.randn(len(idx), 4, generator=plan.generator(step))
        loss = (model(x) - target[idx]).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        return {"loss": loss.item()}

    state = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    metrics = run_loop("toy", total, step_fn, state, resume_path, Dist(), save_every_s=save_every_s)
    return model, ran, metrics


def test_run_loop_resumes_from_saved_step(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFUSEC_NO_PROGRESS", "1")
    resume = tmp_path / "toy.resume.pt"
    reference, ran_ref, _ = toy_run(tmp_path / "ref.resume.pt", 12)
    assert ran_ref == list(range(12))
    assert not (tmp_path / "ref.resume.pt").exists()

    with pytest.raises(Interrupt):
        toy_run(resume, 12, stop_at=7)
    assert resume.exists()
    assert torch.load(resume, weights_only=False)["step"] == 7

    resumed, ran, metrics = toy_run(resume, 12)
    assert ran == list(range(7, 12))                   # continued, did not restart
    assert not resume.exists()                        # removed after a finished run
    assert set(metrics) == {"loss"}
    for p, q in zip(resumed.parameters(), reference.parameters()):
        assert torch.allclose(p, q, atol=1e-6)        # bit-for-bit the uninterrupted run


def test_run_loop_without_saves_restarts(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFUSEC_NO_PROGRESS", "1")
    resume = tmp_path / "toy.resume.pt"
    with pytest.raises(Interrupt):
        toy_run(resume, 10, stop_at=5, save_every_s=3600)
    assert not resume.exists()
    _, ran, _ = toy_run(resume, 10, save_every_s=3600)
    assert ran == list(range(10))


# --- data loading used by the CLI ---------------------------------------------------------------

def test_class_folder_root_loads(tiny_data_root, isolated_env):
    train = load_split("cifar10", "train", tiny_data_root)
    test = load_split("cifar10", "test", tiny_data_root)
    assert train.images.shape == (N_TRAIN, 3, 32, 32) and train.images.dtype == torch.uint8
    assert len(test) == NUM_CLASSES * TEST_PER_CLASS
    assert torch.bincount(train.labels).tolist() == [TRAIN_PER_CLASS] * NUM_CLASSES
    assert train.classes == [f"class{i:02d}" for i in range(NUM_CLASSES)]


def test_same_named_trees_do_not_share_a_decode_cache(tmp_path, isolated_env):
    """Two data roots holding a folder of the same name must not return each other's images."""
    a = write_class_tree(tmp_path / "a", {"train": 2}, size=8, seed=1, classes=2).parent
    b = write_class_tree(tmp_path / "b", {"train": 3}, size=8, seed=2, classes=2).parent
    first, second = load_split("cifar10", "train", a), load_split("cifar10", "train", b)
    assert len(first) == 4 and len(second) == 6
    assert len(load_split("cifar10", "train", a)) == 4      # and the cached copy is the right one


# --- (b) `diffusec train` end to end ------------------------------------------------------------

def invoke(args: list[str]):
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_cli_train_classifier(tiny_data_root, isolated_env, tmp_path):
    ckpt = tmp_path / "ckpt"
    invoke(["train", "classifier", "--max-steps", "3", "--data-root", str(tiny_data_root),
            "--checkpoints", str(ckpt), "--threads", "1"])
    assert (ckpt / "classifier.pt").exists()
    manifest = json.loads((ckpt / "classifier.json").read_text())
    assert manifest["data"] == DESCRIPTION
    assert manifest["preset"] == "cifar10" and manifest["world_size"] == 1 and manifest["seed"] == 0
    assert manifest["metrics"]["steps"] == 3
    assert manifest["metrics"]["epochs"] == pytest.approx(3.0)   # 270 images, batch 256: 1 step/epoch
    assert 0.0 <= manifest["metrics"]["val_accuracy"] <= 1.0
    assert manifest["preset_config"]["classifier"]["kind"] == "airbench"
    assert manifest["metrics"]["recipe"] == "airbench96"   # the cifar10 preset's TrainConfig.classifier_recipe
    assert not list(ckpt.glob("*.resume.pt"))

    from shared.checkpoints import load_checkpoint
    from shared.models.classifier import Classifier
    from shared.presets import get_preset
    model = Classifier(get_preset("cifar10").classifier)
    model.load_state_dict(load_checkpoint(ckpt, "classifier", "cifar10"))


def test_cli_train_epochs_overrides_the_preset_and_is_recorded(tiny_data_root, isolated_env, tmp_path):
    ckpt = tmp_path / "ckpt"
    invoke(["train", "classifier", "--epochs", "2", "--data-root", str(tiny_data_root),
            "--checkpoints", str(ckpt), "--threads", "1"])
    manifest = json.loads((ckpt / "classifier.json").read_text())
    assert manifest["metrics"]["steps"] == 2                       # 270 images, batch 256: 1 step/epoch
    assert manifest["preset_config"]["train"]["classifier_epochs"] == 2
    for bad, message in ((["train", "all", "--epochs", "2"], "name the phase"),
                         (["train", "denoiser", "--epochs", "0"], "0.0 is not in the range")):
        result = CliRunner().invoke(main, [*bad, "--checkpoints", str(ckpt)])
        assert result.exit_code == 2 and message in result.output, result.output


def test_cli_train_codec_phases_chain(tiny_data_root, isolated_env, tmp_path):
    ckpt = tmp_path / "ckpt"
    common = ["--data-root", str(tiny_data_root), "--checkpoints", str(ckpt), "--threads", "1"]
    invoke(["train", "semantic", "--max-steps", "2", *common])
    first = json.loads((ckpt / "codec.json").read_text())
    assert first["stage"] == "semantic" and first["metrics"]["semantic_steps"] == 2
    assert first["data"] == DESCRIPTION and first["bandwidth_ratio"] == pytest.approx(0.25)
    semantic_weights = torch.load(ckpt / "codec.pt", weights_only=True)["state_dict"]

    invoke(["train", "jsc", "--max-steps", "2", *common])
    second = json.loads((ckpt / "codec.json").read_text())
    assert second["stage"] == "jsc" and second["metrics"]["jsc_steps"] == 2
    jsc_weights = torch.load(ckpt / "codec.pt", weights_only=True)["state_dict"]
    # jsc trains only the channel encoder/decoder on top of the loaded semantic model
    for name, value in semantic_weights.items():
        same = torch.equal(value, jsc_weights[name])
        assert same == name.startswith(("semantic_encoder.", "semantic_decoder.")), name

    invoke(["train", "joint", "--max-steps", "2", *common])
    third = json.loads((ckpt / "codec.json").read_text())
    assert third["stage"] == "joint" and third["metrics"]["joint_steps"] == 2
    assert [h["stage"] for h in third["history"]] == ["semantic", "jsc", "joint"]
    assert {"val_ssim_3db", "val_ssim_12db"} <= set(third["metrics"])
    assert third["objective"] == "eq33"
    assert third["preset_config"]["train"]["train_channel"] == "awgn"

    # fine-tuning under fading: the joint phase again, through Rayleigh block fading, recorded as such
    invoke(["train", "joint", "--max-steps", "1", "--channel", "rayleigh", *common])
    faded = json.loads((ckpt / "codec.json").read_text())
    assert faded["preset_config"]["train"]["train_channel"] == "rayleigh"
    result = CliRunner().invoke(main, ["train", "denoiser", "--channel", "rayleigh", *common])
    assert result.exit_code == 2 and "jsc` or `joint" in result.output


def test_cli_train_reports_missing_data(tmp_path, isolated_env):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, ["train", "classifier", "--data-root", str(tmp_path / "empty"),
                                       "--checkpoints", str(tmp_path / "ck"), "--max-steps", "1"])
    assert result.exit_code == 2
    assert "cifar10 train split not found" in result.output and "--data-root" in result.output
    typo = CliRunner().invoke(main, ["train", "classifier", "--data-root", str(tmp_path / "nothing"),
                                     "--checkpoints", str(tmp_path / "ck"), "--max-steps", "1"])
    assert typo.exit_code == 2 and "does not exist" in typo.output


def test_cli_train_names_a_missing_earlier_phase(tiny_data_root, tmp_path, isolated_env):
    result = CliRunner().invoke(main, ["train", "denoiser", "--data-root", str(tiny_data_root),
                                       "--checkpoints", str(tmp_path / "empty"), "--max-steps", "1"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "no codec checkpoint" in result.output


def test_cli_train_denoiser_fine_tune_starts_from_the_folders_denoiser(tiny_data_root, isolated_env, tmp_path):
    ckpt = tmp_path / "ckpt"
    common = ["--data-root", str(tiny_data_root), "--checkpoints", str(ckpt), "--threads", "1", "--max-steps", "1"]
    invoke(["train", "semantic", *common])
    missing = CliRunner().invoke(main, ["train", "denoiser", "--fine-tune", *common])
    assert missing.exit_code == 2 and "denoiser" in missing.output and "Traceback" not in missing.output
    wrong = CliRunner().invoke(main, ["train", "joint", "--fine-tune", *common])
    assert wrong.exit_code == 2 and "`diffusec train denoiser` only" in wrong.output

    def trained(*extra: str) -> tuple[dict, str]:
        invoke(["train", "denoiser", *extra, *common])
        manifest = json.loads((ckpt / "denoiser.json").read_text())
        return torch.load(ckpt / "denoiser.pt", weights_only=True)["state_dict"], manifest["init"]

    def distance(a: dict, b: dict) -> float:
        return sum((a[k] - b[k]).norm().item() for k in a if a[k].is_floating_point())

    first, first_init = trained()
    tuned, tuned_init = trained("--fine-tune", "--seed", "1")
    fresh, _ = trained("--seed", "1")
    assert (first_init, tuned_init) == ("scratch", "checkpoint")
    assert distance(tuned, first) < 0.1 * distance(fresh, first)


# --- (d) DDP over gloo, two processes -----------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(args: list[str], env_extra: dict[str, str], cwd: Path, timeout: float = 180):
    port = free_port()
    env = {**os.environ, **env_extra, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
           "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--nnodes", "1",
           "--master-addr", "127.0.0.1", "--master-port", str(port), *args]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_ddp_train_classifier_two_gloo_processes(tiny_data_root, isolated_env, tmp_path):
    ckpt = tmp_path / "ckpt"
    proc = torchrun(["-m", "diffusec", "train", "classifier", "--max-steps", "3",
                     "--data-root", str(tiny_data_root), "--checkpoints", str(ckpt), "--threads", "1"],
                    isolated_env, REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert (ckpt / "classifier.pt").exists()
    manifest = json.loads((ckpt / "classifier.json").read_text())
    assert manifest["world_size"] == 2
    assert manifest["metrics"]["steps"] == 3 and manifest["data"] == DESCRIPTION
    assert not list(ckpt.glob("*.resume.pt"))


@pytest.mark.slow
def test_ddp_codec_joint_keeps_ranks_in_sync(isolated_env, tmp_path):
    """The joint phase calls encode/decode, not forward: gradients must still be averaged."""
    proc = torchrun([str(REPO / "tests" / "ddp_codec_worker.py"), "joint", str(tmp_path)], isolated_env, REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["max_diff_to_rank0"] == 0.0 for r in reports), reports
    manifest = json.loads((tmp_path / "codec.json").read_text())
    assert manifest["world_size"] == 2 and manifest["stage"] == "joint"


def test_cli_retrain_makes_ddpm_receiver_outputs_once_and_reuses_them(tiny_data_root, isolated_env, tmp_path,
                                                                      monkeypatch):
    """Interactive retraining: receiver outputs from the preset's sampler, cached for the next round."""
    from shared import presets
    from shared.checkpoints import save_checkpoint
    from shared.models.codec import Codec
    from shared.models.unet import UNet

    base = presets.get_preset("cifar10")
    small = dataclasses.replace(base, train=dataclasses.replace(
        base.train, denoiser_max_t_d=3, denoiser_max_t_plus=2, retrain_images=40, retrain_batch=16))
    monkeypatch.setitem(presets.PRESETS, "cifar10", small)
    ckpt = tmp_path / "ckpt"
    common = ["--data-root", str(tiny_data_root), "--checkpoints", str(ckpt), "--threads", "1"]
    save_checkpoint(ckpt, "codec", Codec(small.codec).state_dict(), "cifar10", {})
    save_checkpoint(ckpt, "denoiser", UNet(small.denoiser).state_dict(), "cifar10", {})
    invoke(["train", "classifier", "--max-steps", "1", *common])
    first = invoke(["train", "retrain", "--max-steps", "2", *common])
    assert "reusing" not in first.output
    cached = torch.load(ckpt / "receiver-outputs-train.pt", weights_only=True)
    assert cached["images"].dtype == torch.uint8 and len(cached["images"]) == 40
    assert cached["key"]["sampler"] == "ddpm"
    manifest = json.loads((ckpt / "classifier.json").read_text())
    assert manifest["metrics"]["retrain_sampler"] == "ddpm" and manifest["metrics"]["retrain_steps"] == 2
    second = invoke(["train", "retrain", "--max-steps", "2", *common])
    assert "reusing 40 receiver outputs" in second.output and "reusing 30 receiver outputs" in second.output


def test_wise_ft_weight_average_interpolates_floats_and_keeps_tuned_counters():
    from shared.training.retrain import interpolate_weights

    start = {"w": torch.zeros(3), "bn.num_batches_tracked": torch.tensor(5)}
    tuned = {"w": torch.tensor([2.0, 4.0, -2.0]), "bn.num_batches_tracked": torch.tensor(9)}
    assert torch.equal(interpolate_weights(start, tuned, 1.0)["w"], tuned["w"])
    assert torch.equal(interpolate_weights(start, tuned, 0.0)["w"], start["w"])
    half = interpolate_weights(start, tuned, 0.5)
    assert torch.allclose(half["w"], torch.tensor([1.0, 2.0, -1.0]))
    assert int(half["bn.num_batches_tracked"]) == 9
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        interpolate_weights(start, tuned, 1.5)
