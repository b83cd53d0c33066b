"""Wireless (over-the-air) attacks on the receiver's input: perturbations added to the channel symbols.

The attack paper (Sagduyu et al., section III, "wireless attack") adds a perturbation delta to the
received latent, z_hat + delta, crafted with the gradient of the receiver's decoder followed by its
semantic classifier (white-box: the attacker holds a surrogate copy of both). Its strength is the
perturbation-to-noise ratio (PNR): the perturbation's power over the channel's noise power. With
unit signal power per real symbol and an SNR of S dB the noise power is 10^(-S/10), so a PNR of
P dB means a perturbation power of 10^((P - S)/10) per real symbol -- the same convention as the
channel proxy's ``jamming`` impairment, which is the Gaussian baseline here (:func:`jamming`).

Shapes and units: latents ``z_hat`` are [B, L] real channel symbols (float); ``decode(z_hat)`` gives
a model-space image [B, C, H, W] in about [-1, 1]; ``classify(pixels01)`` takes [0, 1] pixels and
gives logits [B, K]; SNR and PNR are in dB. Every function returns ``delta`` [B, L] (detached, the
dtype and device of ``z_hat``) whose rows each have mean power ``perturbation_power(snr_db, pnr_db)``.
"""
from __future__ import annotations

import functools
import math
from typing import Callable

import torch
import torch.nn.functional as F

from shared.diffusion import to_pixels

METHODS = ("fgm", "pgd")
PNR_RANGE_DB = (-60.0, 60.0)

Decode = Callable[[torch.Tensor], torch.Tensor]
Classify = Callable[[torch.Tensor], torch.Tensor]


def perturbation_power(snr_db: float, pnr_db: float) -> float:
    """Per-symbol perturbation power for a PNR (dB) over the noise power 10^(-snr_db/10) (unit signal)."""
    _check_db("snr_db", snr_db)
    _check_db("pnr_db", pnr_db)
    return 10.0 ** ((pnr_db - snr_db) / 10.0)


def achieved_pnr_db(delta: torch.Tensor, snr_db: float) -> torch.Tensor:
    """The PNR (dB) of each row of ``delta`` [B, L] against the noise power 10^(-snr_db/10) -> [B]."""
    power = delta.detach().double().pow(2).mean(dim=1)
    return 10.0 * torch.log10(power.clamp_min(1e-300)) + snr_db


def surrogate(pipeline) -> tuple[Decode, Classify]:
    """(decode, classify) of a loaded :class:`shared.pipeline.Pipeline`, differentiable w.r.t. the input.

    The pipeline's own ``decode``/``classify`` run under ``no_grad``; the modules themselves do not
    (their parameters are frozen, which is what an attacker wants: gradients w.r.t. the input only).
    """
    if pipeline.codec is None or pipeline.classifier is None:
        raise ValueError("a wireless attack needs the surrogate's codec and classifier; load both parts")
    return pipeline.codec.decode, pipeline.classifier


def jamming(z_hat: torch.Tensor, *, snr_db: float, pnr_db: float,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Gaussian jamming [B, L], each row scaled to mean power exactly 10^((pnr_db - snr_db)/10).

    Rescaling the drawn Gaussian row to the exact power (rather than drawing at that variance) makes
    the comparison with :func:`latent_perturbation` at equal PNR exact frame by frame.
    """
    _check_latents(z_hat)
    power = perturbation_power(snr_db, pnr_db)
    noise = torch.randn(z_hat.shape, generator=generator, dtype=torch.float32,
                        device=generator.device if generator is not None else z_hat.device)
    return _to_power(noise.to(z_hat.device, z_hat.dtype), power, generator)


def latent_perturbation(z_hat: torch.Tensor, *, decode: Decode, classify: Classify, snr_db: float, pnr_db: float,
                        method: str = "fgm", steps: int = 10, target: int | None = None,
                        labels: torch.Tensor | None = None,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """Adversarial perturbation delta [B, L] of the received latents ``z_hat`` [B, L].

    Each row of delta has mean power exactly 10^((pnr_db - snr_db)/10) per real symbol, i.e. an l2
    norm of r = sqrt(L * power).

    - ``fgm`` (the attack paper's Fast Gradient Method): delta = r * g / ||g||_2, g the gradient of
      the loss w.r.t. z_hat (one forward and one backward pass).
    - ``pgd``: ``steps`` normalised-gradient steps of size 2.5 r / steps from delta = 0, each followed
      by a projection on the sphere ||delta||_2 = r (the power budget is an equality here, so that
      methods are compared at exactly the same PNR); the row-wise best iterate (highest loss) wins.

    Loss: non-targeted (``target`` None) ascends the cross-entropy against ``labels`` [B] (int), or,
    when ``labels`` is None -- an over-the-air attacker does not know them -- against the surrogate's
    own prediction on z_hat; targeted (``target`` = class) descends the cross-entropy towards it.
    ``generator`` only seeds the direction of a row whose gradient is exactly zero.
    """
    _check_latents(z_hat)
    if method not in METHODS:
        raise ValueError(f"unknown attack method {method!r}; use one of {', '.join(METHODS)}")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 1000:
        raise ValueError(f"steps must be an integer in 1..1000, got {steps!r}")
    power = perturbation_power(snr_db, pnr_db)
    z0 = z_hat.detach()
    with torch.enable_grad():
        # The first pass needs the class goal; for labels=None it is the surrogate's own prediction.
        goal = _goal(z0, decode, classify, target, labels)
        objective_at = functools.partial(_objective_and_grad, z0, decode=decode, classify=classify, goal=goal,
                                         targeted=target is not None)
        _, grad = objective_at(torch.zeros_like(z0))
        delta = _to_power(grad, power, generator)
        if method == "fgm":
            return delta.detach()
        # PGD: the FGM point is the first iterate.
        return _pgd_on_sphere(delta, objective_at, power, steps, generator).detach()


def _objective_and_grad(z0: torch.Tensor, delta: torch.Tensor, *, decode: Decode, classify: Classify,
                        goal: torch.Tensor, targeted: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row attack objective at z0 + delta [B] (higher = better for the attacker) and its gradient [B, L]."""
    z = (z0 + delta).requires_grad_(True)
    logits = classify(to_pixels(decode(z)))
    if logits.ndim != 2 or logits.shape[0] != z.shape[0]:
        raise ValueError(f"classify must return logits [B, K], got {tuple(logits.shape)}")
    if int(goal.max()) >= logits.shape[1]:
        raise ValueError(f"class {int(goal.max())} is out of range: the classifier has {logits.shape[1]} classes")
    loss = F.cross_entropy(logits, goal, reduction="none")
    objective = -loss if targeted else loss
    # Rows are independent (eval-mode models), so the gradient of the sum is per row.
    (grad,) = torch.autograd.grad(objective.sum(), z)
    return objective.detach(), grad.detach()


def _pgd_on_sphere(delta: torch.Tensor, objective_at, power: float, steps: int,
                   generator: torch.Generator | None) -> torch.Tensor:
    """``steps`` normalised-gradient steps of 2.5 r / steps from ``delta`` [B, L], each projected back on
    the sphere of mean power ``power``; the row-wise best iterate (highest objective) wins."""
    alpha = 2.5 * math.sqrt(delta.shape[1] * power) / steps
    best, best_objective = delta.clone(), None
    for _ in range(steps):
        objective, grad = objective_at(delta)
        if best_objective is None:
            best_objective = torch.full_like(objective, -math.inf)
        better = objective > best_objective
        best[better], best_objective[better] = delta[better], objective[better]
        delta = _to_power(delta + alpha * _unit_rows(grad), power, generator)
    objective, _ = objective_at(delta)
    best[objective > best_objective] = delta[objective > best_objective]
    return best


# --- helpers --------------------------------------------------------------------------------------
def _goal(z0: torch.Tensor, decode: Decode, classify: Classify, target: int | None,
          labels: torch.Tensor | None) -> torch.Tensor:
    """The class per row the loss refers to: the target, the labels, or the surrogate's prediction."""
    if target is not None:
        if isinstance(target, bool) or not isinstance(target, int) or target < 0:
            raise ValueError(f"target must be a class index >= 0, got {target!r}")
        return torch.full((z0.shape[0],), target, dtype=torch.long, device=z0.device)
    if labels is not None:
        labels = torch.as_tensor(labels, device=z0.device).long().reshape(-1)
        if labels.shape[0] != z0.shape[0]:
            raise ValueError(f"{labels.shape[0]} labels for {z0.shape[0]} latents")
        if labels.numel() and int(labels.min()) < 0:
            raise ValueError(f"labels must be class indices >= 0, got {int(labels.min())}")
        return labels
    with torch.no_grad():
        return classify(to_pixels(decode(z0))).argmax(dim=1)


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    norm = x.norm(dim=1, keepdim=True)
    return torch.where(norm > 0, x / norm.clamp_min(1e-30), torch.zeros_like(x))


def _to_power(direction: torch.Tensor, power: float, generator: torch.Generator | None) -> torch.Tensor:
    """Scale each row of ``direction`` [B, L] to mean power ``power``; an all-zero row gets a random direction."""
    direction = direction.detach().clone()
    dead = direction.pow(2).sum(dim=1) == 0
    if dead.any():  # a saturated surrogate (zero gradient): any direction is as good as another
        fill = torch.randn((int(dead.sum()), direction.shape[1]), generator=generator, dtype=torch.float32,
                           device=generator.device if generator is not None else direction.device)
        direction[dead] = fill.to(direction.device, direction.dtype)
    # Normalise in float64: rows of tiny gradients would otherwise miss the power by float32 rounding.
    d64 = direction.double()
    scaled = d64 * torch.sqrt(power / d64.pow(2).mean(dim=1, keepdim=True))
    return scaled.to(direction.dtype)


def _check_latents(z_hat: torch.Tensor) -> None:
    if not isinstance(z_hat, torch.Tensor) or z_hat.ndim != 2 or z_hat.shape[0] == 0 or z_hat.shape[1] == 0:
        shape = tuple(z_hat.shape) if isinstance(z_hat, torch.Tensor) else type(z_hat).__name__
        raise ValueError(f"z_hat must be received channel symbols [B, L] with B, L >= 1, got {shape}")
    if not z_hat.is_floating_point():
        raise ValueError(f"z_hat must be a float tensor, got {z_hat.dtype}")


def _check_db(name: str, value: float) -> None:
    try:
        ok = not isinstance(value, bool) and math.isfinite(float(value))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be a finite number of dB, got {value!r}")
    if name == "pnr_db" and not PNR_RANGE_DB[0] <= value <= PNR_RANGE_DB[1]:
        raise ValueError(f"pnr_db must lie in {PNR_RANGE_DB[0]:g}..{PNR_RANGE_DB[1]:g} dB, got {value}")


__all__ = ["METHODS", "achieved_pnr_db", "jamming", "latent_perturbation", "perturbation_power", "surrogate"]
