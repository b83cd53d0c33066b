"""Data-source attacks: eps parsing, FGSM/PGD in the l_inf ball, and that they actually attack."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from shared.attacks import SourceAttack, craft, fgsm, parse_eps, pgd
from shared.attacks.differentiable import chain_logits, describe_gradient_path
from shared.attacks.source import quantize_within
from shared.checkpoints import default_checkpoint_dir
from shared.models.classifier import Classifier
from shared.models.codec import Codec
from shared.models.unet import UNet
from shared.pipeline import Pipeline
from shared.diffusion import linear_beta_schedule
from shared.presets import get_preset

SHIPPED = default_checkpoint_dir("cifar10")


# --- eps budgets ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text, value", [("8/255", 8 / 255), ("0.03", 0.03), (" 4 / 255 ", 4 / 255), ("0", 0.0),
                                         ("1", 1.0), (0.1, 0.1)])
def test_parse_eps_accepts_decimals_and_fractions(text, value):
    assert parse_eps(text) == pytest.approx(value)


@pytest.mark.parametrize("text, words", [("9/0", "divides by zero"), ("abc", "0.03 or 8/255"), ("", "0.03 or 8/255"),
                                         ("2", "[0, 1]"), ("-0.1", "[0, 1]"), ("nan", "[0, 1]"), ("1/2/3", "8/255")])
def test_parse_eps_rejects_bad_input_clearly(text, words):
    with pytest.raises(ValueError) as err:
        parse_eps(text)
    assert words in str(err.value) and (text.strip() in str(err.value))


def test_source_attack_validates_and_serialises():
    pgd_attack = SourceAttack("pgd", 8 / 255)
    assert pgd_attack.effective_step_size == pytest.approx(2.5 * (8 / 255) / 10)
    assert SourceAttack("fgsm", 0.1).effective_step_size == 0.1 and SourceAttack("fgsm", 0.1).effective_steps == 1
    described = pgd_attack.to_dict()
    assert described["kind"] == "pgd" and described["eps_label"] == "8/255" and described["targeted"] is False
    for bad in (dict(kind="cw", eps=0.1), dict(kind="pgd", eps=1.5), dict(kind="pgd", eps=0.1, steps=0),
                dict(kind="pgd", eps=0.1, target=-1), dict(kind="pgd", eps=0.1, step_size=0.0),
                dict(kind="pgd", eps=0.1, eot_samples=0)):
        with pytest.raises(ValueError):
            SourceAttack(**bad)


# --- a small fitted model --------------------------------------------------------------------------
CLASSES = 10


def make_task(n_per_class: int = 20, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """10 classes of 3x8x8 images: a faint class pattern (+/-0.06) around grey, plus pixel noise."""
    patterns = (torch.rand(CLASSES, 3, 8, 8, generator=torch.Generator().manual_seed(123)) * 2 - 1) * 0.06
    g = torch.Generator().manual_seed(seed)     # the noise differs per seed, the class patterns do not
    labels = torch.arange(CLASSES).repeat_interleave(n_per_class)
    x = 0.5 + patterns[labels] + 0.01 * torch.randn(len(labels), 3, 8, 8, generator=g)
    return x.clamp(0, 1), labels


@pytest.fixture(scope="module")
def fitted() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A linear softmax classifier fitted to ``make_task`` (clean accuracy ~1 on fresh samples)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, CLASSES))
    x, y = make_task(seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(150):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval().requires_grad_(False)
    x_test, y_test = make_task(n_per_class=5, seed=1)
    return model, x_test, y_test


def accuracy(model, x, y) -> float:
    return (model(x).argmax(1) == y).float().mean().item()


def test_pgd_stays_in_the_eps_ball_and_the_pixel_range(fitted):
    model, _, _ = fitted
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 8, 8, generator=g)
    x[:4] = 0.0   # pixels at the edges of [0, 1]: the clamp must hold them there
    x[4:8] = 1.0
    y = torch.randint(0, CLASSES, (16,), generator=g)
    for eps in (0.0, 2 / 255, 0.1):
        for adv in (pgd(model, x, y, eps, steps=7, step_size=eps, generator=g),   # large steps: projection bites
                    pgd(model, x, y, eps, steps=3, step_size=eps / 2, target=3, random_start=False),
                    fgsm(model, x, y, eps)):
            assert adv.shape == x.shape
            assert (adv - x).abs().max().item() <= eps + 1e-6
            assert adv.min().item() >= 0.0 and adv.max().item() <= 1.0


def test_pgd_raises_the_loss_and_lowers_accuracy(fitted):
    model, x, y = fitted
    clean_acc = accuracy(model, x, y)
    clean_loss = F.cross_entropy(model(x), y).item()
    adv = pgd(model, x, y, eps=0.05, steps=10, step_size=0.0125, generator=torch.Generator().manual_seed(0))
    assert clean_acc >= 0.9, "the fitted model should classify clean samples"
    assert F.cross_entropy(model(adv), y).item() > clean_loss + 1.0
    assert accuracy(model, adv, y) <= 0.2
    # Random noise of the same budget does almost nothing: the drop is the gradient's doing.
    noise = (x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).sign()).clamp(0, 1)
    assert accuracy(model, noise, y) >= 0.8
    # FGSM, one step, also hurts, less reliably than PGD.
    assert accuracy(model, fgsm(model, x, y, 0.05), y) < clean_acc - 0.3


def test_targeted_attack_hits_the_target_more_than_non_targeted(fitted):
    model, x, y = fitted
    target = 3
    others = y != target
    kwargs = dict(eps=0.05, steps=10, step_size=0.0125, generator=torch.Generator().manual_seed(0))
    hit_targeted = (model(pgd(model, x, y, target=target, **kwargs)).argmax(1)[others] == target).float().mean().item()
    kwargs["generator"] = torch.Generator().manual_seed(0)
    hit_untargeted = (model(pgd(model, x, y, **kwargs)).argmax(1)[others] == target).float().mean().item()
    assert hit_targeted >= 0.8
    assert hit_targeted > hit_untargeted + 0.3


def test_pgd_is_repeatable_with_a_seeded_generator(fitted):
    model, x, y = fitted
    first = pgd(model, x, y, 0.03, 3, 0.01, generator=torch.Generator().manual_seed(7))
    second = pgd(model, x, y, 0.03, 3, 0.01, generator=torch.Generator().manual_seed(7))
    assert torch.equal(first, second)


def test_quantized_store_stays_within_the_budget():
    x_u8 = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    x01 = x_u8.float() / 255
    eps = 8 / 256   # 7.97 levels: plain rounding could step to 8
    adv = (x01 + eps * torch.randn(x01.shape).sign()).clamp(0, 1)
    stored = quantize_within(adv, x_u8, eps)
    assert stored.dtype == torch.uint8
    assert (stored.int() - x_u8.int()).abs().max().item() <= 7


# --- craft() on the pipeline ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def untrained_pipeline() -> Pipeline:
    torch.manual_seed(0)
    preset = get_preset("cifar10")
    modules = [Codec(preset.codec), UNet(preset.denoiser), Classifier(preset.classifier)]
    for module in modules:
        module.eval().requires_grad_(False)
    return Pipeline(preset, *modules, linear_beta_schedule(preset.diffusion))


def test_chain_is_differentiable_through_every_stage(untrained_pipeline):
    """The grad-enabled chain reaches the input although the public stage methods are no_grad."""
    x = torch.rand(2, 3, 32, 32).requires_grad_(True)
    for system in ("classifier", "vit", "plain"):
        logits = chain_logits(untrained_pipeline, x, system, snr_db=10.0, t_d=3, t_plus=1, purify_steps=2,
                              generator=torch.Generator().manual_seed(0))
        (grad,) = torch.autograd.grad(logits[:, 0].sum(), x)
        assert logits.shape == (2, 10) and grad.abs().sum() > 0, system
    assert "EOT over 4" in describe_gradient_path("plain", True, 4)
    assert describe_gradient_path("plain", False, 4).startswith("classifier")


@pytest.mark.parametrize("adaptive", [False, True])
def test_craft_returns_bounded_perturbed_images(untrained_pipeline, adaptive):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 32, generator=g)
    y = torch.tensor([1, 2])
    attack = SourceAttack("pgd", 4 / 255, steps=2, adaptive=adaptive, eot_samples=2)
    adv = craft(attack, untrained_pipeline, x, y, snr_db=10.0, t_d=3, t_plus=0, system="plain", generator=g)
    assert adv.shape == x.shape and adv.device.type == "cpu"
    assert (adv - x).abs().max().item() <= 4 / 255 + 1e-6 and (adv - x).abs().max().item() > 1 / 255
    with pytest.raises(ValueError, match="out of range"):
        craft(SourceAttack("fgsm", 0.1, target=10), untrained_pipeline, x, y, snr_db=10.0, t_d=3, t_plus=0)


def test_an_adaptive_attack_bounds_the_rows_it_differentiates_at_once(untrained_pipeline, monkeypatch):
    """A batch larger than the memory bound is crafted in chunks: every gradient sees <= the bound's rows."""
    import shared.attacks.source as source

    monkeypatch.setattr(source, "ADAPTIVE_ROWS_PER_GRADIENT", 4)
    rows_seen = []
    real_fn = source.attack_logits_fn

    def counting_fn(*args, **kwargs):
        logits_fn = real_fn(*args, **kwargs)
        return lambda x: rows_seen.append(len(x) * 2) or logits_fn(x)

    monkeypatch.setattr(source, "attack_logits_fn", counting_fn)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(5, 3, 32, 32, generator=g), torch.tensor([0, 1, 2, 3, 4])
    attack = SourceAttack("pgd", 4 / 255, steps=2, adaptive=True, eot_samples=2)
    adv = craft(attack, untrained_pipeline, x, y, snr_db=10.0, t_d=3, t_plus=0, system="plain", generator=g)
    assert adv.shape == x.shape and (adv - x).abs().max().item() <= 4 / 255 + 1e-6
    assert rows_seen == [4, 4, 4, 4, 2, 2]   # chunks of 2, 2 and 1 images, 2 PGD steps each, 2 draws per image
    assert (adv - x).abs().amax(dim=(1, 2, 3)).min().item() > 1 / 255   # every chunk was attacked


@pytest.mark.skipif(not (SHIPPED / "classifier.pt").exists(), reason="no shipped cifar10 checkpoints")
def test_pgd_8_of_255_breaks_the_shipped_classifier():
    """The paper's protocol (PGD, 8/255, 10 steps, white-box classifier) on real weights and images."""
    from shared.data import load_sample

    pipe = Pipeline.load("cifar10", parts=("classifier",))
    data = load_sample("cifar10").subset(16, 0)
    x, y = data.as_float(), data.labels
    adv = craft(SourceAttack("pgd", 8 / 255), pipe, x, y, snr_db=15.0, t_d=20, t_plus=0,
                generator=torch.Generator().manual_seed(0))
    assert accuracy(pipe.classifier, x, y) >= 0.6
    assert accuracy(pipe.classifier, adv, y) <= 0.15


def test_pollute_stores_uint8_images_within_the_budget(untrained_pipeline):
    from shared.attacks.source import pollute

    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    attack = SourceAttack("fgsm", 8 / 255)
    for labels in (torch.tensor([0, 1, 2]), None):   # None: a user's folder, no labels
        stored = pollute(attack, untrained_pipeline, images, labels, snr_db=10.0, t_d=2, t_plus=0, batch=2)
        change = (stored.int() - images.int()).abs()
        assert stored.dtype == torch.uint8 and stored.shape == images.shape
        assert change.max().item() == 8 and change.float().mean().item() > 4


# --- the sender pollutes its image store ---------------------------------------------------------
def test_sender_rejects_a_bad_budget_before_connecting():
    from click.testing import CliRunner

    from sender.cli import main as sender_main

    result = CliRunner().invoke(sender_main, ["run", "--to", "127.0.0.1:1", "--source-attack", "pgd", "--eps", "9/0"])
    assert result.exit_code == 2 and "9/0" in result.output and "divides by zero" in result.output


@pytest.mark.slow
def test_sender_source_attack_over_the_link(tmp_path):
    """A real receiver process; the sender crafts PGD images with the receiver's classifier first."""
    import subprocess

    from link_support import ENV, REPO_ROOT, free_port, last_json, make_untrained_checkpoints, \
        receiver_service, sender_command

    checkpoints = make_untrained_checkpoints(tmp_path / "ckpt")
    port = free_port()
    receiver = receiver_service(port, checkpoints, tmp_path, "--t-d", "2").start()
    try:
        receiver.wait_healthy(f"127.0.0.1:{port}")
        done = subprocess.run(sender_command(f"127.0.0.1:{port}", checkpoints, "--n", "4", "--source-attack", "pgd",
                                             "--eps", "8/255", "--attack-steps", "2", "--target", "1"),
                              cwd=REPO_ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    finally:
        receiver.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    payload = last_json(done.stdout)
    assert payload["frames_acked"] == 4
    assert payload["source_attack"]["kind"] == "pgd" and payload["source_attack"]["target"] == 1
    assert payload["source_attack"]["gradient_path"].startswith("classifier")
    assert payload["attack_success_rate"] is not None and 0.0 <= payload["attack_success_rate"] <= 1.0


def test_a_polluted_store_is_crafted_once_and_read_back_while_its_inputs_are_unchanged(tmp_path, monkeypatch,
                                                                                       untrained_checkpoints):
    import shared.attacks.store as store
    from shared.attacks.source import SourceAttack
    from shared.data import load_sample
    from shared.pipeline import Pipeline

    pipe = Pipeline.load("cifar10", untrained_checkpoints, parts=("classifier",))
    data, attack = load_sample("cifar10").subset(6, 0), SourceAttack("pgd", 8 / 255, steps=2)
    first = store.cached_polluted_store(pipe, data, attack, seed=0, batch=4, folder=tmp_path)
    assert first.images.dtype == torch.uint8 and len(list(tmp_path.glob("*.pt"))) == 1
    assert (first.images.int() - data.images.int()).abs().max() <= 8 and not torch.equal(first.images, data.images)

    def no_crafting(*args, **kwargs):
        raise AssertionError("crafted again although the store is cached")

    monkeypatch.setattr(store, "pollute", no_crafting)
    assert torch.equal(store.cached_polluted_store(pipe, data, attack, seed=0, batch=4, folder=tmp_path).images,
                       first.images)
    with pytest.raises(AssertionError, match="crafted again"):   # another seed is another store
        store.cached_polluted_store(pipe, data, attack, seed=1, batch=4, folder=tmp_path)
    with pytest.raises(ValueError, match="no single store"):
        store.polluted_store(pipe, data, SourceAttack("pgd", 8 / 255, adaptive=True), seed=0, batch=4)
