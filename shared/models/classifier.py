"""Receiver classifiers: an airbench94-layout CNN (CPU preset), a small ResNet-9 and WRN-28-10 (the
paper's, Table I / VI-A).

Both take pixels in [0, 1], shape [B, C, H, W], and normalise internally, so every caller in the
link passes the same thing it would show a person.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..presets import ClassifierConfig

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(channels, channels), conv_bn_relu(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet9(nn.Module):
    """The DAWNBench ResNet-9 layout (prep, 3 stages, 2 residual blocks) with configurable widths."""

    def __init__(self, in_channels: int, num_classes: int, widths: tuple[int, ...]):
        super().__init__()
        w0, w1, w2, w3 = widths
        self.features = nn.Sequential(
            conv_bn_relu(in_channels, w0),
            conv_bn_relu(w0, w1), nn.MaxPool2d(2), Residual(w1),
            conv_bn_relu(w1, w2), nn.MaxPool2d(2),
            conv_bn_relu(w2, w3), nn.MaxPool2d(2), Residual(w3),
            nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.head = nn.Linear(w3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ConvGroup(nn.Module):
    """airbench's block: conv -> 2x2 max-pool -> BN -> GELU -> conv -> BN -> GELU.

    With ``residual_pair`` (airbench96) a third conv follows, and the last two convs form a residual
    branch: ``x0 = GELU(BN(pool(conv1 x)))``, ``out = GELU(x0 + BN(conv3 GELU(BN(conv2 x0))))``.
    BatchNorm scales are frozen at 1 (only the biases learn), as in airbench.
    """

    def __init__(self, c_in: int, c_out: int, bn_momentum: float = 0.4, residual_pair: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.norm1 = nn.BatchNorm2d(c_out, eps=1e-12, momentum=bn_momentum)
        self.norm2 = nn.BatchNorm2d(c_out, eps=1e-12, momentum=bn_momentum)
        convs, norms = [self.conv1, self.conv2], [self.norm1, self.norm2]
        self.residual_pair = residual_pair
        if residual_pair:
            self.conv3 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
            self.norm3 = nn.BatchNorm2d(c_out, eps=1e-12, momentum=bn_momentum)
            convs.append(self.conv3)
            norms.append(self.norm3)
        for norm in norms:
            norm.weight.requires_grad_(False)
        for conv in convs:   # dirac init: each block starts close to identity-plus-noise
            w = conv.weight.data
            torch.nn.init.dirac_(w[:min(w.shape[0], w.shape[1])])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.norm1(F.max_pool2d(self.conv1(x), 2)))
        if not self.residual_pair:
            return F.gelu(self.norm2(self.conv2(x)))
        branch = self.norm3(self.conv3(F.gelu(self.norm2(self.conv2(x)))))
        return F.gelu(x + branch)


class AirbenchNet(nn.Module):
    """The airbench layout (Keller Jordan, 2024): a 2x2 patch-whitening conv, three ConvGroups, max-pool.

    ``residual_pair`` gives airbench96's groups (three convs, the last two residual) instead of airbench94's.

    ``[B, C, 32, 32]`` normalised pixels -> logits ``[B, classes]``. The whitening conv's weights are
    set from data by :func:`shared.training.airbench.patch_whitening_weights` and stay frozen.
    """

    def __init__(self, in_channels: int, num_classes: int, widths: tuple[int, ...],
                 residual_pair: bool = False):
        super().__init__()
        w1, w2, w3 = widths[-3:]
        patch_dims = in_channels * 4
        self.whiten = nn.Conv2d(in_channels, 2 * patch_dims, 2, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)
        self.groups = nn.Sequential(*(ConvGroup(a, b, residual_pair=residual_pair)
                                      for a, b in [(2 * patch_dims, w1), (w1, w2), (w2, w3)]))
        self.head = nn.Linear(w3, num_classes, bias=False)
        self.logit_scale = 1 / 9   # airbench's output scaling: keeps early logits small under lr ~ 10

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.groups(F.gelu(self.whiten(x)))
        return F.adaptive_max_pool2d(x, 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)) * self.logit_scale


class WideBasic(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, dropout: float):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(c_in), nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(c_out), nn.Conv2d(c_out, c_out, 3, stride, padding=1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.shortcut = (nn.Conv2d(c_in, c_out, 1, stride, bias=False)
                         if stride != 1 or c_in != c_out else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(self.dropout(out))))
        return out + self.shortcut(x)


class WideResNet(nn.Module):
    """WRN-depth-widen (Zagoruyko & Komodakis); WRN-28-10 has 36.5 M parameters."""

    def __init__(self, in_channels: int, num_classes: int, depth: int = 28, widen: int = 10, dropout: float = 0.3):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)]
        c_in = widths[0]
        for stage, c_out in enumerate(widths[1:]):
            for block in range(n):
                layers.append(WideBasic(c_in, c_out, 2 if (stage > 0 and block == 0) else 1, dropout))
                c_in = c_out
        layers += [nn.BatchNorm2d(c_in), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class Classifier(nn.Module):
    """Normalising wrapper: ``forward(x01 [B,C,H,W] in [0,1]) -> logits [B, num_classes]``.

    With ``config.test_time_flip`` the eval-mode logits are the mean over the image and its mirror
    (airbench's TTA level 1); ``config.test_time_translate`` adds, at half weight, the mirror means of
    the image shifted by 1 pixel up-left and down-right (reflect padding; airbench's level 2, 6 views).
    A white-box attack differentiates through every view.
    """

    def __init__(self, config: ClassifierConfig, in_channels: int = 3, num_classes: int = 10):
        super().__init__()
        mean = CIFAR_MEAN if in_channels == 3 else (0.5,)
        std = CIFAR_STD if in_channels == 3 else (0.25,)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))
        if config.kind == "resnet9":
            self.net: nn.Module = ResNet9(in_channels, num_classes, config.widths)
        elif config.kind == "airbench":
            self.net = AirbenchNet(in_channels, num_classes, config.widths, config.residual_pair)
        elif config.kind == "wrn":
            self.net = WideResNet(in_channels, num_classes, config.wrn_depth, config.wrn_widen, config.dropout)
        else:
            raise ValueError(f"unknown classifier kind {config.kind!r}")

        if config.test_time_translate and not config.test_time_flip:
            raise ValueError("test_time_translate averages mirrored views: set test_time_flip too")
        self.test_time_flip = config.test_time_flip
        self.test_time_translate = config.test_time_translate

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        x = (x01 - self.mean) / self.std
        if self.training or not self.test_time_flip:
            return self.net(x)
        logits = self._mirror_mean(x)
        if not self.test_time_translate:
            return logits
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        shifted = (padded[..., :-2, :-2], padded[..., 2:, 2:])
        return 0.5 * logits + 0.25 * sum(self._mirror_mean(view) for view in shifted)

    def _mirror_mean(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.net(x) + self.net(x.flip(-1)))
