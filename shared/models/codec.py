"""ViT-based joint semantic-channel codec (paper eqs. 4-6, Table I).

    x [B,C,H,W] in [-1,1] --S--> tokens [B,N,dim] --C--> z [B, N*k] (unit power per real symbol)
    z_hat --C^-1--> tokens [B,N,dim] --S^-1--> x_hat [B,C,H,W]

N = (H/patch)^2 tokens, k = ``symbols_per_token`` real channel symbols per token.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..channel import normalize_power
from ..presets import CodecConfig


def transformer(dim: int, heads: int, layers: int, mlp_ratio: float) -> nn.TransformerEncoder:
    block = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=max(1, round(dim * mlp_ratio)), dropout=0.0,
                                       activation="gelu", batch_first=True, norm_first=True)
    return nn.TransformerEncoder(block, layers, enable_nested_tensor=False)


class SemanticEncoder(nn.Module):
    """S(x): patch embedding + learned positions + ViT blocks -> tokens [B, N, dim]."""

    def __init__(self, cfg: CodecConfig):
        super().__init__()
        self.patch_embed = nn.Conv2d(cfg.channels, cfg.dim, cfg.patch, stride=cfg.patch)
        self.pos = nn.Parameter(torch.randn(1, cfg.tokens, cfg.dim) * 0.02)
        self.blocks = transformer(cfg.dim, cfg.heads, cfg.enc_layers, cfg.mlp_ratio)
        self.norm = nn.LayerNorm(cfg.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos
        return self.norm(self.blocks(tokens))


class ChannelEncoder(nn.Module):
    """C(.): per token Dense(tx_hidden, ReLU) -> Dense(k, linear); flatten; unit power. -> [B, N*k]."""

    def __init__(self, cfg: CodecConfig):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cfg.dim, cfg.tx_hidden), nn.ReLU(), nn.Linear(cfg.tx_hidden, cfg.symbols_per_token))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return normalize_power(self.net(tokens).flatten(1))


class ChannelDecoder(nn.Module):
    """C^-1(.): [B, N*k] -> per token Dense(rx_hidden, ReLU) -> Dense(dim, linear) -> [B, N, dim]."""

    def __init__(self, cfg: CodecConfig):
        super().__init__()
        self.cfg = cfg
        self.net = nn.Sequential(nn.Linear(cfg.symbols_per_token, cfg.rx_hidden), nn.ReLU(), nn.Linear(cfg.rx_hidden, cfg.dim))

    def forward(self, z_hat: torch.Tensor) -> torch.Tensor:
        return self.net(z_hat.view(z_hat.shape[0], self.cfg.tokens, self.cfg.symbols_per_token))


class SemanticDecoder(nn.Module):
    """S^-1(.): learned positions + transformer blocks + linear patch head -> image [B, C, H, W]."""

    def __init__(self, cfg: CodecConfig):
        super().__init__()
        self.cfg = cfg
        self.pos = nn.Parameter(torch.randn(1, cfg.tokens, cfg.dim) * 0.02)
        self.blocks = transformer(cfg.dim, cfg.heads, cfg.dec_layers, cfg.mlp_ratio)
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.channels * cfg.patch * cfg.patch)
        self.unpatchify = nn.Fold((cfg.image_size, cfg.image_size), cfg.patch, stride=cfg.patch)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        patches = self.head(self.norm(self.blocks(tokens + self.pos)))      # [B, N, C*p*p]
        return self.unpatchify(patches.transpose(1, 2))                       # [B, C, H, W]


class Codec(nn.Module):
    """F and F^-1 of eqs. 4 and 6. ``encode``: image -> unit-power symbols; ``decode``: symbols -> image."""

    def __init__(self, cfg: CodecConfig):
        super().__init__()
        self.cfg = cfg
        self.semantic_encoder = SemanticEncoder(cfg)
        self.channel_encoder = ChannelEncoder(cfg)
        self.channel_decoder = ChannelDecoder(cfg)
        self.semantic_decoder = SemanticDecoder(cfg)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x [B,C,H,W] in [-1,1] -> z [B, L] real symbols, unit average power per symbol."""
        return self.channel_encoder(self.semantic_encoder(x))

    def decode(self, z_hat: torch.Tensor) -> torch.Tensor:
        """z_hat [B, L] -> x_hat [B,C,H,W] (model space, not clamped)."""
        return self.semantic_decoder(self.channel_decoder(z_hat))

    def semantic_roundtrip(self, x: torch.Tensor) -> torch.Tensor:
        """S^-1(S(x)) without the channel: the semantic model alone (training phase 1)."""
        return self.semantic_decoder(self.semantic_encoder(x))
