"""Model shapes and sizes per preset (Table I), the classifier's input convention, augmentation."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from shared.data.augment import augment, random_crop, random_hflip
from shared.models.classifier import CIFAR_MEAN, CIFAR_STD, Classifier, WideResNet
from shared.models.codec import Codec
from shared.presets import PRESETS, ClassifierConfig, get_preset


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- presets and codec --------------------------------------------------------------------------

@pytest.mark.parametrize("name, ratio, symbols", [("cifar10", 0.25, 768), ("fmnist", 0.25, 196),
                                                  ("mnist", 0.25, 196), ("paper-cifar10", 2560 / 3072, 2560)])
def test_bandwidth_ratio(name, ratio, symbols):
    cfg = get_preset(name).codec
    assert cfg.channel_symbols == symbols
    assert cfg.bandwidth_ratio == pytest.approx(ratio)


def test_unknown_preset_names_choices():
    with pytest.raises(KeyError, match="cifar10"):
        get_preset("nope")
    assert {"cifar10", "paper-cifar10", "fmnist", "mnist"} <= set(PRESETS)


@pytest.mark.parametrize("name", ["cifar10", "fmnist"])
def test_codec_shapes_and_unit_power(name):
    torch.manual_seed(0)
    cfg = get_preset(name).codec
    codec = Codec(cfg).eval()
    x = torch.rand(3, cfg.channels, cfg.image_size, cfg.image_size) * 2 - 1
    with torch.no_grad():
        z = codec.encode(x)
        assert z.shape == (3, cfg.channel_symbols)
        assert torch.allclose(z.pow(2).mean(dim=1), torch.ones(3), atol=1e-4)
        x_hat = codec.decode(z)
        assert x_hat.shape == x.shape
        assert codec.semantic_roundtrip(x).shape == x.shape
        # the decoder is a function of the symbols: different z, different image
        assert not torch.allclose(codec.decode(z + 0.5 * torch.randn_like(z)), x_hat)


def test_codec_decoder_unpatchify_places_patches():
    """The patch head's output for token n lands in patch n (row-major), channel-major inside."""
    cfg = get_preset("cifar10").codec
    codec = Codec(cfg)
    patches = torch.zeros(1, cfg.channels * cfg.patch ** 2, cfg.tokens)
    patches[0, :, 9] = 1.0                    # token 9 = row 1, column 1 of the 8x8 grid
    image = codec.semantic_decoder.unpatchify(patches)
    p = cfg.patch
    assert image[0, :, p:2 * p, p:2 * p].eq(1).all() and image.sum() == cfg.channels * p * p


def test_codec_gradients_reach_every_parameter():
    cfg = get_preset("fmnist").codec
    codec = Codec(cfg)
    x = torch.rand(2, cfg.channels, cfg.image_size, cfg.image_size) * 2 - 1
    codec.decode(codec.encode(x)).pow(2).mean().backward()
    missing = [n for n, p in codec.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_paper_preset_builds_and_runs_every_model():
    """Table I sizes: build and run one forward pass of each model of ``paper-cifar10``."""
    torch.manual_seed(0)
    preset = get_preset("paper-cifar10")
    cfg = preset.codec
    assert (cfg.dim, cfg.heads, cfg.enc_layers, cfg.tx_hidden, cfg.symbols_per_token, cfg.rx_hidden) == \
           (352, 8, 10, 256, 160, 1024)
    x01 = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        codec = Codec(cfg).eval()
        z = codec.encode(x01 * 2 - 1)
        assert z.shape == (2, 2560)
        assert codec.decode(z).shape == (2, 3, 32, 32)

        classifier = Classifier(preset.classifier, cfg.channels, preset.num_classes).eval()
        assert isinstance(classifier.net, WideResNet)
        assert classifier(x01).shape == (2, 10)

        try:
            from shared.models.unet import UNet
        except ImportError:        # the denoiser module is optional for this test
            UNet = None
        if UNet is not None:
            unet = UNet(preset.denoiser, cfg.channels).eval()
            t = torch.tensor([0, 37], dtype=torch.int64)
            assert unet(x01 * 2 - 1, t).shape == (2, 3, 32, 32)


@pytest.mark.parametrize("name", ["cifar10", "fmnist"])
def test_unet_forward_shape_cpu_presets(name):
    unet_module = pytest.importorskip("shared.models.unet")
    preset = get_preset(name)
    c, s = preset.codec.channels, preset.codec.image_size
    unet = unet_module.UNet(preset.denoiser, c).eval()
    with torch.no_grad():
        out = unet(torch.randn(2, c, s, s), torch.tensor([1, 50], dtype=torch.int64))
    assert out.shape == (2, c, s, s) and torch.isfinite(out).all()


# --- classifier ---------------------------------------------------------------------------------

def test_wrn_28_10_parameter_count():
    n = count(WideResNet(3, 10, depth=28, widen=10))
    assert n == pytest.approx(36.5e6, rel=0.005)


def test_wrn_rejects_bad_depth():
    with pytest.raises(ValueError):
        WideResNet(3, 10, depth=27)


def test_classifier_normalises_01_input_internally():
    torch.manual_seed(0)
    model = Classifier(ClassifierConfig(), 3, 10).eval()
    x01 = torch.rand(4, 3, 32, 32)
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        assert model(x01).shape == (4, 10)
        assert torch.allclose(model(x01), model.net((x01 - mean) / std), atol=1e-5)
    # mean/std are buffers: saved in the state dict, moved with .to(), not trained
    assert {"mean", "std"} <= set(model.state_dict()) and all(p is not model.mean for p in model.parameters())


def test_classifier_one_channel_and_unknown_kind():
    model = Classifier(get_preset("fmnist").classifier, 1, 10).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError):
        Classifier(ClassifierConfig(kind="vgg"))


# --- augmentation -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_augment_preserves_shape_and_dtype(dtype):
    images = (torch.rand(5, 3, 32, 32) * 255).to(dtype)
    out = augment(images, padding=4, flip=True, generator=torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == dtype


def test_augment_identity_without_padding_or_flip():
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    assert torch.equal(augment(images, padding=0, flip=False), images)


def test_augment_is_reproducible_with_generator():
    images = torch.rand(8, 3, 16, 16)
    a = augment(images, 4, True, torch.Generator().manual_seed(3))
    b = augment(images, 4, True, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert not torch.equal(a, images)                                        # it does augment
    assert not torch.equal(a, augment(images, 4, True, torch.Generator().manual_seed(4)))   # and the seed matters


def test_hflip_mirrors_about_half():
    images = torch.rand(400, 1, 4, 5)
    out = random_hflip(images, torch.Generator().manual_seed(1))
    flipped = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, images)])
    same = torch.tensor([torch.equal(o, i) for o, i in zip(out, images)])
    assert (flipped ^ same).all()                        # every image is either kept or mirrored
    assert 150 < flipped.sum().item() < 250


def test_random_crop_is_a_window_of_the_zero_padded_image():
    pad, h, w = 3, 6, 7
    images = torch.rand(50, 2, h, w) + 1.0               # strictly positive: padding zeros are visible
    out = random_crop(images, pad, torch.Generator().manual_seed(0))
    padded = F.pad(images, (pad,) * 4)
    offsets = set()
    for k in range(len(images)):
        match = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                 if torch.equal(out[k], padded[k, :, dy:dy + h, dx:dx + w])]
        assert match, f"image {k} is not a crop of its padded self"
        offsets.add(match[0])
    assert len(offsets) > 10                             # offsets really vary per image
