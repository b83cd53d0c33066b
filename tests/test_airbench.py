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


def test_cutout_blanks_one_square_per_image_to_the_fill():
    g = torch.Generator().manual_seed(2)
    images = torch.rand(8, 3, 32, 32) + 2.0          # every pixel > fill
    fill = torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1)
    out = airbench.random_cutout(images, 12, fill, g)
    blanked = out[:, 0] < 1.0                           # [B, H, W]
    assert blanked.sum(dim=(1, 2)).tolist() == [144] * 8
    rows, cols = blanked.any(2), blanked.any(1)        # a square: 12 rows x 12 columns, contiguous
    assert rows.sum(1).tolist() == [12] * 8 and cols.sum(1).tolist() == [12] * 8
    assert torch.allclose(out[:, 2][blanked], torch.tensor(0.3))
    assert torch.equal(out[~blanked.unsqueeze(1).expand_as(out)], images[~blanked.unsqueeze(1).expand_as(out)])
    assert airbench.random_cutout(images, 0, fill, g) is images


def test_airbench96_groups_add_a_residual_pair_and_leave_airbench94_checkpoints_loadable():
    torch.manual_seed(0)
    plain = Classifier(ClassifierConfig(kind="airbench", widths=(8, 16, 16)))
    residual = Classifier(ClassifierConfig(kind="airbench", widths=(8, 16, 16), residual_pair=True))
    extra = set(residual.state_dict()) - set(plain.state_dict())
    assert extra and all(".conv3." in k or ".norm3." in k for k in extra)
    assert set(plain.state_dict()) <= set(residual.state_dict())
    group = residual.net.groups[1].eval()
    x = torch.randn(2, 8, 16, 16)
    with torch.no_grad():
        group.conv3.weight.zero_()                      # the residual branch off: output = GELU(GELU(x0))
        x0 = F.gelu(group.norm1(F.max_pool2d(group.conv1(x), 2)))
        assert torch.allclose(group(x), F.gelu(x0 + group.norm3.bias.view(1, -1, 1, 1)), atol=1e-6)
    assert residual(torch.rand(3, 3, 32, 32)).shape == (3, 10)


def test_recipes_are_named_and_an_unknown_one_is_a_clear_error():
    assert airbench.recipe_named("airbench94") == airbench.AirbenchRecipe()
    fast96 = airbench.recipe_named("airbench96")
    assert (fast96.translate_px, fast96.cutout_px, fast96.lr_end) == (4, 12, 0.0)
    factor = airbench.triangular_lr(100, fast96.lr_peak_at, fast96.lr_end)
    assert factor(10) == 1.0 and factor(100) == 0.0
    with pytest.raises(ValueError, match="airbench94"):
        airbench.recipe_named("airbench95")
