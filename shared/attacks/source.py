"""Data-source (computer-vision) attacks: l_inf FGSM and PGD on the images before the sender diffuses them.

Threat model (DiffuSeC paper, section VI): the adversary pollutes the sender's image store with
perturbed images x' with ||x' - x||_inf <= eps in [0, 1] pixel units (e.g. 8/256). Non-adaptive:
white-box against the receiver's classifier alone, the paper's protocol. Adaptive
(``adaptive=True``): against the whole chain diffuse -> encode -> AWGN -> decode -> purify ->
classify, with expectation over transformation (EOT) over the diffusion and channel noise; the
gradient goes through a strided surrogate purifier (see :mod:`shared.attacks.differentiable`).

Non-targeted attacks ascend the cross-entropy of the true label; targeted attacks descend the
cross-entropy of the target class (the attack paper's two objectives, section III).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from .budget import format_eps
from .differentiable import (GRADIENT_PURIFY_STEPS, LogitsFn, chain_logits, describe_gradient_path,
                             eot_logits_fn)

KINDS = ("fgsm", "pgd")

# Rows (images x EOT draws) an adaptive attack sends through the differentiable chain per gradient.
# The graph of a row (codec, the surrogate purifier's U-Net calls, the classifier's test-time views) is
# kept for the backward pass: 1000 rows (a batch of 250 with 4 draws) outgrew 24 GiB, 256 rows fit in
# a few GiB. Images beyond it are crafted in consecutive chunks; the attack is per image, so only the
# order of the noise draws changes.
ADAPTIVE_ROWS_PER_GRADIENT = 256


@dataclass(frozen=True)
class SourceAttack:
    """An l_inf source attack. ``eps`` and ``step_size`` are in [0, 1] pixel units."""

    kind: str                       # "fgsm" (one signed-gradient step of size eps) or "pgd"
    eps: float                      # l_inf budget, e.g. 8/255
    steps: int = 10                 # PGD iterations (FGSM: 1)
    step_size: float | None = None  # default: 2.5 * eps / steps for PGD (Madry et al.), eps for FGSM
    target: int | None = None       # None: non-targeted; else the class to push every image to
    adaptive: bool = False          # differentiate through the whole chain (EOT) instead of the classifier
    eot_samples: int = 4            # noise draws averaged per gradient when adaptive
    random_start: bool = True       # PGD starts from a uniform point of the eps-ball

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown source attack {self.kind!r}; use one of {KINDS}")
        if not (isinstance(self.eps, (int, float)) and math.isfinite(self.eps) and 0.0 <= self.eps <= 1.0):
            raise ValueError(f"eps must lie in [0, 1] ([0, 1] pixel units), got {self.eps!r}")
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"attack steps must be a positive integer, got {self.steps!r}")
        if self.step_size is not None and not (math.isfinite(self.step_size) and self.step_size > 0):
            raise ValueError(f"step size must be a positive number of [0, 1] pixel units, got {self.step_size!r}")
        if self.target is not None and (not isinstance(self.target, int) or self.target < 0):
            raise ValueError(f"target must be a class index >= 0, got {self.target!r}")
        if not isinstance(self.eot_samples, int) or self.eot_samples < 1:
            raise ValueError(f"eot_samples must be a positive integer, got {self.eot_samples!r}")

    @property
    def effective_step_size(self) -> float:
        if self.step_size is not None:
            return self.step_size
        return self.eps if self.kind == "fgsm" else 2.5 * self.eps / self.steps

    @property
    def effective_steps(self) -> int:
        return 1 if self.kind == "fgsm" else self.steps

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(steps=self.effective_steps, step_size=self.effective_step_size, eps_label=format_eps(self.eps),
                   targeted=self.target is not None, norm="linf")
        return out


def _loss(logits_fn: LogitsFn, x: torch.Tensor, labels: torch.Tensor, target: int | None) -> torch.Tensor:
    """The quantity to *ascend*: CE(true label) non-targeted, -CE(target) targeted.

    ``logits_fn`` may return [R*B, K] for R stochastic draws (draw-major rows): the loss is the mean
    over all rows, so its gradient is the EOT average.
    """
    logits = logits_fn(x)
    repeats, rest = divmod(logits.shape[0], x.shape[0])
    if rest or repeats < 1:
        raise ValueError(f"logits_fn returned {logits.shape[0]} rows for a batch of {x.shape[0]}")
    if target is None:
        return F.cross_entropy(logits, labels.to(logits.device).repeat(repeats))
    goal = torch.full((logits.shape[0],), int(target), dtype=torch.int64, device=logits.device)
    return -F.cross_entropy(logits, goal)


def _gradient(logits_fn: LogitsFn, x: torch.Tensor, labels: torch.Tensor, target: int | None) -> torch.Tensor:
    with torch.enable_grad():  # the pipeline's public methods run under no_grad
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(_loss(logits_fn, x, labels, target), x)
    return grad


def _project(x_adv: torch.Tensor, x01: torch.Tensor, eps: float) -> torch.Tensor:
    """Back into the l_inf eps-ball around x01, then into [0, 1]."""
    return torch.min(torch.max(x_adv, x01 - eps), x01 + eps).clamp(0.0, 1.0)


def fgsm(logits_fn: LogitsFn, x01: torch.Tensor, labels: torch.Tensor, eps: float,
         target: int | None = None, step_size: float | None = None) -> torch.Tensor:
    """Fast gradient sign method: x' = clip(x +/- eps * sign(grad)). [B,C,H,W] in [0,1] -> same.

    ``step_size`` (default eps) may be set smaller; the result is projected to the eps-ball anyway.
    """
    x01 = x01.detach()
    if eps == 0:
        return x01.clone()
    grad = _gradient(logits_fn, x01, labels, target)
    return _project(x01 + (eps if step_size is None else step_size) * grad.sign(), x01, eps)


def pgd(logits_fn: LogitsFn, x01: torch.Tensor, labels: torch.Tensor, eps: float, steps: int, step_size: float,
        target: int | None = None, random_start: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
    """Projected gradient descent (Madry et al.) in the l_inf ball: ``steps`` signed steps of ``step_size``.

    [B,C,H,W] pixels in [0, 1] -> x' with ||x' - x||_inf <= eps and x' in [0, 1]. The random start
    draws from ``generator`` (on the CPU), so a seeded run repeats.
    """
    x01 = x01.detach()
    if eps == 0:
        return x01.clone()
    x_adv = x01.clone()
    if random_start:
        noise = torch.rand(x01.shape, generator=generator, dtype=x01.dtype).to(x01.device)
        x_adv = _project(x_adv + (noise * 2 - 1) * eps, x01, eps)
    for _ in range(steps):
        grad = _gradient(logits_fn, x_adv, labels, target)
        x_adv = _project(x_adv + step_size * grad.sign(), x01, eps)
    return x_adv


def attack_logits_fn(attack: SourceAttack, pipeline, system: str, *, snr_db: float, t_d: int, t_plus: int,
                     generator: torch.Generator | None = None,
                     purify_steps: int = GRADIENT_PURIFY_STEPS) -> LogitsFn:
    """What ``attack`` differentiates: the classifier alone, or the EOT chain of ``system``."""
    if not attack.adaptive or system == "classifier":
        return pipeline.classifier
    if attack.eot_samples == 1:
        return lambda x: chain_logits(pipeline, x, system, snr_db=snr_db, t_d=t_d, t_plus=t_plus,
                                      purify_steps=purify_steps, generator=generator)
    return eot_logits_fn(pipeline, system, snr_db=snr_db, t_d=t_d, t_plus=t_plus, eot_samples=attack.eot_samples,
                         purify_steps=purify_steps, generator=generator)


def craft(attack: SourceAttack, pipeline, x01: torch.Tensor, labels: torch.Tensor, *, snr_db: float, t_d: int,
          t_plus: int, system: str = "plain", generator: torch.Generator | None = None,
          purify_steps: int = GRADIENT_PURIFY_STEPS) -> torch.Tensor:
    """The polluted images x' for ``x01`` [B,C,H,W] in [0,1] with true ``labels`` [B] -> [B,C,H,W] in [0,1].

    Non-adaptive: white-box against ``pipeline.classifier`` (only that part must be loaded).
    Adaptive: against ``system``'s chain at ``snr_db`` (dB), t_D and t_P = t_D + t_plus, gradients
    averaged over ``attack.eot_samples`` draws of diffusion and channel noise from ``generator``.
    The result lives on the CPU, like the pipeline's outputs.
    """
    if pipeline.classifier is None:
        raise ValueError("a source attack needs the receiver classifier (white-box); load the classifier part")
    if attack.adaptive and system != "classifier" and pipeline.codec is None:
        raise ValueError("an adaptive source attack needs the codec (and for plain the denoiser)")
    if attack.adaptive and system == "plain" and pipeline.denoiser is None:
        raise ValueError("an adaptive source attack on plain needs the denoiser")
    num_classes = pipeline.preset.num_classes
    if attack.target is not None and attack.target >= num_classes:
        raise ValueError(f"target class {attack.target} out of range: the preset has {num_classes} classes")
    logits_fn = attack_logits_fn(attack, pipeline, system, snr_db=snr_db, t_d=t_d, t_plus=t_plus,
                                 generator=generator, purify_steps=purify_steps)
    chunk = max(1, len(x01))
    if attack.adaptive and system != "classifier":
        chunk = max(1, ADAPTIVE_ROWS_PER_GRADIENT // attack.eot_samples)
    crafted = [_craft_chunk(attack, logits_fn, x01[i:i + chunk].to(pipeline.device),
                            labels[i:i + chunk].to(pipeline.device), generator) for i in range(0, len(x01), chunk)]
    return torch.cat(crafted) if crafted else x01.detach().cpu().clone()


def _craft_chunk(attack: SourceAttack, logits_fn: LogitsFn, x01: torch.Tensor, labels: torch.Tensor,
                 generator: torch.Generator | None) -> torch.Tensor:
    """``attack`` on one chunk of images [B,C,H,W] in [0, 1] -> x' on the CPU."""
    if attack.kind == "fgsm":
        x_adv = fgsm(logits_fn, x01, labels, attack.eps, attack.target, attack.effective_step_size)
    else:
        x_adv = pgd(logits_fn, x01, labels, attack.eps, attack.steps, attack.effective_step_size, attack.target,
                    attack.random_start, generator)
    return x_adv.detach().cpu()


def quantize_within(x_adv01: torch.Tensor, x_u8: torch.Tensor, eps: float) -> torch.Tensor:
    """Store polluted images as 8-bit files do: uint8 [B,C,H,W], still within eps of the originals.

    Rounding may step half a level past the budget; the change is clamped to floor(eps * 255) levels.
    """
    levels = math.floor(eps * 255 + 1e-6)
    rounded = (x_adv01.cpu() * 255).round()
    base = x_u8.to(torch.float32)
    return torch.min(torch.max(rounded, base - levels), base + levels).clamp(0, 255).to(torch.uint8)


def describe(attack: SourceAttack, system: str) -> dict:
    """``to_dict`` plus the gradient path, for the eval JSON."""
    out = attack.to_dict()
    out["gradient_path"] = describe_gradient_path(system, attack.adaptive, attack.eot_samples)
    return out


def pollute(attack: SourceAttack, pipeline, images_u8: torch.Tensor, labels: torch.Tensor | None, *, snr_db: float,
            t_d: int, t_plus: int, system: str = "plain", batch: int = 64,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """A polluted image store: ``craft`` over uint8 [N,C,H,W] images in batches -> uint8 [N,C,H,W].

    Without ``labels`` (a user's own folder) a non-targeted attack pushes away from the
    classifier's own prediction on the clean image, the usual stand-in for the unknown label.
    The result is stored 8-bit and stays within ``attack.eps`` of the originals (:func:`quantize_within`).
    """
    out = torch.empty_like(images_u8)
    for start in range(0, len(images_u8), batch):
        x_u8 = images_u8[start:start + batch]
        x01 = x_u8.float().div(255.0)
        if labels is not None:
            y = labels[start:start + batch]
        else:
            with torch.no_grad():
                y = pipeline.classifier(x01.to(pipeline.device)).argmax(1).cpu()
        x_adv = craft(attack, pipeline, x01, y, snr_db=snr_db, t_d=t_d, t_plus=t_plus, system=system,
                      generator=generator)
        out[start:start + batch] = quantize_within(x_adv, x_u8, attack.eps)
    return out
