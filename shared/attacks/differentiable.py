"""Grad-enabled copies of the DiffuSeC chain, for attackers that differentiate through it.

The public :class:`~shared.pipeline.Pipeline` stage methods are ``@torch.no_grad`` (serving never
needs gradients); these helpers call the same modules and the same math (``q_sample``, ``awgn``,
``denoise_ddim``) with autograd on. Shapes and units are the pipeline's: [0, 1] pixels
[B, C, H, W], model space [-1, 1], latents [B, L] real symbols at unit power, SNR in dB.

Gradient path. Backpropagating through the receiver's 20-step DDPM chain (20 U-Net calls per
image, kept for the backward pass, times the PGD steps and EOT draws) is unaffordable on a
2-core CPU. The purifier is therefore replaced *for the gradient only* by the strided DDIM
sampler with ``purify_steps`` network calls from the same t_P (a BPDA-style surrogate: same
network, same start and end, fewer steps). The attacked images are always scored through the
real receiver (whatever sampler the evaluation uses).
"""
from __future__ import annotations

from typing import Callable

import torch

from ..channel import awgn
from ..diffusion import denoise_ddim, q_sample, to_model_space, to_pixels
from ..pipeline import SYSTEMS, Pipeline

# U-Net calls of the strided purifier the gradient goes through (see the module docstring).
GRADIENT_PURIFY_STEPS = 3

LogitsFn = Callable[[torch.Tensor], torch.Tensor]


def purify_strided(pipeline: Pipeline, x_hat: torch.Tensor, t_p: int, steps: int = GRADIENT_PURIFY_STEPS) -> torch.Tensor:
    """Differentiable P(x_hat; t_P) by strided deterministic DDIM: model space [B,C,H,W] -> [0, 1] pixels."""
    def predict_x0(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return pipeline.denoiser.predict_x0(x_t, t, pipeline.schedule)

    return to_pixels(denoise_ddim(predict_x0, x_hat, t_p, pipeline.schedule, steps=steps))


def receiver_logits(pipeline: Pipeline, system: str, z_hat: torch.Tensor, t_p: int,
                    purify_steps: int = GRADIENT_PURIFY_STEPS) -> torch.Tensor:
    """Differentiable receiver: z_hat [B, L] -> decode -> (purify for plain) -> classify -> logits [B, K]."""
    x_hat = pipeline.codec.decode(z_hat)
    pixels = purify_strided(pipeline, x_hat, t_p, purify_steps) if system == "plain" else to_pixels(x_hat)
    return pipeline.classifier(pixels)


def chain_logits(pipeline: Pipeline, x01: torch.Tensor, system: str, *, snr_db: float, t_d: int, t_plus: int,
                 purify_steps: int = GRADIENT_PURIFY_STEPS, generator: torch.Generator | None = None) -> torch.Tensor:
    """One stochastic draw of the whole chain, differentiable in ``x01`` ([0,1] pixels) -> logits [B, K].

    classifier: H(x); vit: H(F^-1(F(x) + n)); plain: H(P~(F^-1(F(D(x; t_D)) + n); t_D + t_plus)) with
    P~ the strided surrogate purifier. The diffusion and channel noise come from ``generator``.
    Call it under ``torch.enable_grad()``.
    """
    if system not in SYSTEMS:
        raise ValueError(f"unknown system {system!r}; use one of {SYSTEMS}")
    if system == "classifier":
        return pipeline.classifier(x01)
    x = to_model_space(x01)
    if system == "plain":
        x = q_sample(x, t_d, pipeline.schedule, generator=generator)
    z_hat = awgn(pipeline.codec.encode(x), snr_db, generator)
    return receiver_logits(pipeline, system, z_hat, t_d + t_plus, purify_steps)


def eot_logits_fn(pipeline: Pipeline, system: str, *, snr_db: float, t_d: int, t_plus: int, eot_samples: int,
                  purify_steps: int = GRADIENT_PURIFY_STEPS, generator: torch.Generator | None = None) -> LogitsFn:
    """``x01 [B,...] -> logits [eot_samples * B, K]``: the chain on ``eot_samples`` noise draws at once.

    Rows are draw-major (draw 0 of every image, then draw 1, ...), the layout the attacks in
    :mod:`shared.attacks.source` expect; averaging the loss over the rows averages the gradient
    over diffusion and channel noise (expectation over transformation). One batched call instead
    of a loop: the same arithmetic, fewer Python round trips.
    """
    def logits_fn(x01: torch.Tensor) -> torch.Tensor:
        repeated = x01.unsqueeze(0).expand(eot_samples, *x01.shape).reshape(-1, *x01.shape[1:])
        return chain_logits(pipeline, repeated, system, snr_db=snr_db, t_d=t_d, t_plus=t_plus,
                            purify_steps=purify_steps, generator=generator)

    return logits_fn


def describe_gradient_path(system: str, adaptive: bool, eot_samples: int,
                           purify_steps: int = GRADIENT_PURIFY_STEPS) -> str:
    """What the attacker differentiates through, for the eval JSON (``gradient_path``)."""
    if not adaptive or system == "classifier":
        return "classifier (white-box, receiver classifier alone)"
    stages = "encode -> AWGN -> decode -> classify" if system == "vit" else (
        f"diffuse(t_D) -> encode -> AWGN -> decode -> strided DDIM purify ({purify_steps} U-Net calls from t_P, "
        "surrogate for the receiver's sampler) -> classify")
    return f"{stages}; EOT over {eot_samples} noise draws"
