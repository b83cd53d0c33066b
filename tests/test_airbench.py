"""The airbench recipe's parts: patch whitening, lookahead, the LR schedule, the optimizer's groups, TTA."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from shared.models.classifier import Classifier
from shared.presets import ClassifierConfig
from shared.training import airbench


def test_patch_whitening_makes_patch_covariance_the_identity():
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(3, 3, generator=g)
    images = torch.einsum("ij,bjhw->bihw", mix, torch.randn(200, 3, 8, 8, generator=g))  # correlated channels
    weights = airbench.patch_whitening_weights(images, eps=0.0)
    assert weights.shape == (24, 3, 2, 2)
    out = F.conv2d(images, weights[:12]).permute(0, 2, 3, 1).reshape(-1, 12)
    covariance = out.T @ out / len(out)
    assert torch.allclose(covariance, torch.eye(12), atol=0.05)
    assert torch.equal(weights[12:], -weights[:12])


def test_lookahead_pulls_weights_to_the_ema_and_back():
    model = torch.nn.Linear(2, 1, bias=False)
    model.weight.data.fill_(0.0)
    lookahead = airbench.Lookahead(model)
    model.weight.data.fill_(1.0)
    lookahead.pull(model, decay=0.75)            # ema = 0.75 * 0 + 0.25 * 1
    assert torch.allclose(model.weight, torch.full((1, 2), 0.25))
    model.weight.data.fill_(5.0)
    lookahead.pull(model, decay=1.0)             # decay 1 restores the EMA
    assert torch.allclose(model.weight, torch.full((1, 2), 0.25))
    restored = airbench.Lookahead(torch.nn.Linear(2, 1, bias=False))
    restored.load_state_dict(lookahead.state_dict())
    assert torch.equal(restored.ema["weight"], lookahead.ema["weight"])


def test_triangular_schedule_and_lookahead_decay():
    factor = airbench.triangular_lr(100)
    assert factor(0) == 0.2 and factor(23) == 1.0 and abs(factor(100) - 0.07) < 1e-12
    recipe = airbench.AirbenchRecipe()
    assert airbench.lookahead_decay(0, 100, recipe) == 0.0
    assert abs(airbench.lookahead_decay(100, 100, recipe) - 0.95 ** 5) < 1e-12


def test_optimizer_groups_leave_frozen_weights_out_and_speed_up_norm_biases():
    model = Classifier(ClassifierConfig(kind="airbench", widths=(8, 16, 16)))
    optimizer = airbench.optimizer_for(model, airbench.AirbenchRecipe())
    groups = {g["name"]: g for g in optimizer.param_groups}
    grouped = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert id(model.net.whiten.weight) not in grouped                 # set from data, frozen
    assert id(model.net.groups[0].norm1.weight) not in grouped         # BatchNorm scales frozen at 1
    assert id(model.net.whiten.bias) in {id(p) for p in groups["whiten_bias"]["params"]}
    assert groups["norm_bias"]["lr"] == 64 * groups["weights"]["lr"]


def test_test_time_flip_averages_the_mirror_in_eval_mode_only():
    torch.manual_seed(0)
    model = Classifier(ClassifierConfig(kind="airbench", widths=(8, 16, 16), test_time_flip=True)).eval()
    x = torch.rand(4, 3, 32, 32)
    both = model(x)
    assert torch.allclose(both, model(x.flip(-1)), atol=1e-5)         # mirror-invariant by construction
    model.test_time_flip = False
    assert not torch.allclose(both, model(x), atol=1e-5)


def test_test_time_translate_adds_the_shifted_mirror_pairs_at_half_weight():
    torch.manual_seed(0)
    config = ClassifierConfig(kind="airbench", widths=(8, 16, 16), test_time_flip=True, test_time_translate=True)
    model = Classifier(config).eval()
    x = torch.rand(2, 3, 32, 32)
    net = lambda view: model.net((view - model.mean) / model.std)          # noqa: E731
    mirror = lambda view: 0.5 * (net(view) + net(view.flip(-1)))            # noqa: E731
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")      # (normalising commutes with the shifts)
    expected = 0.5 * mirror(x) + 0.25 * (mirror(padded[..., :-2, :-2]) + mirror(padded[..., 2:, 2:]))
    assert torch.allclose(model(x), expected, atol=1e-5)
    with pytest.raises(ValueError, match="set test_time_flip too"):
        Classifier(ClassifierConfig(kind="airbench", widths=(8, 16, 16), test_time_translate=True))


def test_translate_and_flip_keeps_shape_and_moves_pixels():
    g = torch.Generator().manual_seed(1)
    images = torch.rand(16, 3, 32, 32)
    out = airbench.translate_and_flip(images, 2, g)
    assert out.shape == images.shape and not torch.equal(out, images)
