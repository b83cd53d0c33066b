"""PGD adversarial training (`diffusec train classifier --adversarial`): a separate classifier_at.pt."""
from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from diffusec.cli import main
from shared import presets
from shared.checkpoints import CheckpointError
from shared.pipeline import Pipeline
from shared.presets import get_preset
from shared.training.adversarial import adversarial_batch, load_adversarial_classifier, robust_accuracy

EPS = 8 / 255


@pytest.fixture
def small_cifar10(monkeypatch):
    """The cifar10 preset with a narrow ResNet-9 (classifier and classifier_at alike) and small batches,
    so a CLI run takes seconds and classifier_at can start from classifier.pt."""
    base = get_preset("cifar10")
    small = dataclasses.replace(
        base, classifier=presets.ClassifierConfig(widths=(8, 16, 16, 32)), classifier_at=None,
        train=dataclasses.replace(base.train, classifier_batch=64, adversarial_batch=64))
    monkeypatch.setitem(presets.PRESETS, "cifar10", small)
    return small


def invoke(args: list[str], ok: bool = True):
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert (result.exit_code == 0) == ok, result.output
    return result


def digest(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_cli_adversarial_writes_classifier_at_and_leaves_classifier_alone(tiny_data_root, isolated_env, tmp_path,
                                                                           small_cifar10):
    ckpt = tmp_path / "ckpt"
    common = ["--data-root", str(tiny_data_root), "--checkpoints", str(ckpt), "--threads", "1"]
    invoke(["train", "classifier", "--max-steps", "2", *common])
    before = {name: digest(ckpt / name) for name in ("classifier.pt", "classifier.json")}

    invoke(["train", "classifier", "--adversarial", "--max-steps", "2", *common])
    assert {name: digest(ckpt / name) for name in before} == before          # untouched
    assert (ckpt / "classifier_at.pt").exists() and not list(ckpt.glob("*.resume.pt"))
    manifest = json.loads((ckpt / "classifier_at.json").read_text())
    assert manifest["kind"] == "classifier_at" and manifest["preset"] == "cifar10" and manifest["init"] == "pretrained"
    metrics = manifest["metrics"]
    assert metrics["steps"] == 2
    for key in ("val_accuracy", "val_pgd_accuracy", "val_accuracy_before", "val_pgd_accuracy_before"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert "PGD" in manifest["objective"] and "jpeg-ldpc-at" in manifest["used_by"]
    assert manifest["preset_config"]["train"]["adversarial_steps"] == 3
    assert manifest["history"][-1]["stage"] == "classifier.pt (start)"

    # the two ways jpeg-ldpc-at can load it; both differ from classifier.pt after training
    at = Pipeline.load("cifar10", ckpt, parts=("classifier",), classifier_kind="classifier_at").classifier
    std = Pipeline.load("cifar10", ckpt, parts=("classifier",)).classifier
    direct = load_adversarial_classifier("cifar10", ckpt)
    assert not direct.training and not any(p.requires_grad for p in direct.parameters())
    for (name, a), b, c in zip(at.state_dict().items(), direct.state_dict().values(), std.state_dict().values()):
        assert torch.equal(a, b), name
    assert any(not torch.equal(a, c) for a, c in zip(at.state_dict().values(), std.state_dict().values())
               if a.is_floating_point())


def test_cli_adversarial_needs_classifier_phase_and_pretrained_weights(tiny_data_root, isolated_env, tmp_path,
                                                                        small_cifar10):
    ckpt = tmp_path / "empty"
    common = ["--data-root", str(tiny_data_root), "--checkpoints", str(ckpt), "--threads", "1"]
    result = invoke(["train", "denoiser", "--adversarial", *common], ok=False)
    assert "--adversarial goes with `diffusec train classifier`" in result.output
    missing = invoke(["train", "classifier", "--adversarial", "--max-steps", "1", *common], ok=False)
    assert "diffusec train classifier" in missing.output and "Traceback" not in missing.output
    with pytest.raises(CheckpointError, match="classifier --adversarial"):
        load_adversarial_classifier("cifar10", ckpt)


def test_pretrained_init_refuses_a_different_network(tiny_data_root, isolated_env, tmp_path):
    """cifar10's classifier_at is the earlier ResNet-9, classifier.pt the airbench network: say so, no traceback."""
    ckpt = tmp_path / "ckpt"
    result = invoke(["train", "classifier", "--adversarial", "--max-steps", "1", "--data-root", str(tiny_data_root),
                     "--checkpoints", str(ckpt), "--threads", "1"], ok=False)
    assert "cannot start from classifier.pt" in result.output and "adversarial_init='scratch'" in result.output
    assert "Traceback" not in result.output and not (ckpt / "classifier_at.pt").exists()


def test_presets_carry_the_adversarial_settings():
    cpu, paper = get_preset("cifar10").train, get_preset("paper-cifar10").train
    assert cpu.adversarial_eps == paper.adversarial_eps == pytest.approx(8 / 255)
    assert cpu.adversarial_init == "pretrained" and cpu.adversarial_pgd_step == pytest.approx(2.5 * EPS / 3)
    assert paper.adversarial_init == "scratch" and paper.adversarial_steps == 10 and paper.adversarial_epochs >= 100
    assert "PGD-10" in paper.describe_adversarial() and "PGD-3" in cpu.describe_adversarial()


class TinyBN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4),
                                       torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                       torch.nn.Linear(4, 10))

    def forward(self, x):
        return self.net(x)


def test_training_batch_lies_in_the_eps_ball_and_in_unit_range():
    torch.manual_seed(0)
    model = TinyBN().train()
    x = torch.rand(16, 3, 8, 8)
    x[:, :, 0] = 0.0                  # pixels at the box edges: the clamp to [0, 1] must hold
    x[:, :, 1] = 1.0
    y = torch.randint(0, 10, (16,))
    bn_before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = dataclasses.replace(get_preset("cifar10").train, adversarial_clean_fraction=0.25)
    x_adv = adversarial_batch(model, x, y, cfg, generator=torch.Generator().manual_seed(1))
    assert x_adv.shape == x.shape
    assert (x_adv - x).abs().max() <= EPS + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert torch.equal(x_adv[:4], x[:4])                 # the clean quarter is untouched
    assert (x_adv[4:] - x[4:]).abs().max() > EPS / 2     # the rest was attacked
    assert model.training                                # mode restored after crafting in eval mode
    for key, value in model.state_dict().items():        # crafting never updates BN statistics
        assert torch.equal(value, bn_before[key]), key
    again = adversarial_batch(model, x, y, cfg, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again, x_adv)                     # seeded: a resumed run repeats its batches


def test_adversarial_training_raises_robust_accuracy_on_a_separable_problem():
    """One robust feature (margin 0.25 > eps) and 191 weak ones (margin 0.04 < eps), Tsipras et al. style:
    standard training leans on the weak ones and breaks under PGD; PGD training does not."""
    g = torch.Generator().manual_seed(0)
    n, eps = 600, 0.1
    y = torch.randint(0, 2, (n,), generator=g)
    sign = (y.float() * 2 - 1).view(n, 1, 1, 1)
    x = 0.5 + sign * 0.04 + 0.1 * torch.randn(n, 3, 8, 8, generator=g)
    x[:, 0, 0, 0] = 0.5 + sign.view(n) * 0.25 + 0.1 * torch.randn(n, generator=g)
    x = x.clamp(0, 1)
    train_x, train_y, test_x, test_y = x[:400], y[:400], x[400:], y[400:]
    cfg = dataclasses.replace(get_preset("cifar10").train, adversarial_eps=eps, adversarial_steps=5)

    def fit(adversarial: bool) -> torch.nn.Module:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 2))
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        for step in range(150):
            xb = adversarial_batch(model, train_x, train_y, cfg, torch.Generator().manual_seed(step)) \
                if adversarial else train_x
            loss = F.cross_entropy(model(xb), train_y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return model

    standard, robust = fit(False), fit(True)
    rob_std = robust_accuracy(standard, test_x, test_y, eps, steps=10, step=eps / 4)
    rob_at = robust_accuracy(robust, test_x, test_y, eps, steps=10, step=eps / 4)
    with torch.no_grad():
        clean_at = (robust(test_x).argmax(1) == test_y).float().mean().item()
    assert rob_std < 0.2 and rob_at > 0.8 and clean_at > 0.8, (rob_std, rob_at, clean_at)
