"""DDPM math for the diffusing module D(x; t_D) and the asymmetric denoising module P(x; t_P).

Pure functions over a :class:`Schedule`; the network is passed in as ``predict_x0(x_t, t)``.

Conventions (the paper's, section IV):
- images live in [-1, 1] here (``to_model_space``/``to_pixels`` convert from/to [0, 1] pixels);
- timesteps are integers t in 0..T, t = 0 is the clean image, and ``alpha_bar[t]`` is
  prod_{i<=t} (1 - beta_i) with ``alpha_bar[0] = 1``; per-sample timesteps are int64 [B];
- the forward process is eq. 12: x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) n.
  (Eq. 11 in the text prints the variance as (1 - alpha_t); eq. 12 and DDPM have 1 - alpha_bar_t.)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .presets import DiffusionConfig
from .row_noise import RowNoise

# predict_x0(x_t [B,C,H,W], t [B] int64) -> x0_hat [B,C,H,W]
X0Predictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Schedule:
    """Per-timestep constants, each a float64 tensor indexed by t in 0..T (index 0 = clean)."""

    betas: torch.Tensor
    alpha_bars: torch.Tensor

    @property
    def num_timesteps(self) -> int:
        return len(self.betas) - 1


def _coef(values64: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-sample float64 coefficient [B] as ``like``'s dtype/device, shaped [B, 1, 1, ...].

    Coefficients are formed in float64 *before* the cast: in float32, 1 - alpha_bar_t at small t
    loses ~4 significant digits (1 - 0.9999f = 1.0002e-4), which made the t = 1 posterior mean
    0.99985 x0 instead of x0.
    """
    return values64.to(dtype=like.dtype, device=like.device).view(-1, *([1] * (like.ndim - 1)))


Noise = torch.Generator | RowNoise | None   # one stream for the batch, or one per row (shared.row_noise)


def _randn_like(like: torch.Tensor, generator: Noise, active: torch.Tensor | None = None) -> torch.Tensor:
    """Standard normal noise shaped like ``like``, drawn from ``generator`` (on its device); with per-row
    streams, only ``active`` rows [B] draw (the others get zeros)."""
    if isinstance(generator, RowNoise):
        return generator.randn_like(like, active)
    device = generator.device if generator is not None else like.device
    return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=device).to(like.device)


def linear_beta_schedule(config: DiffusionConfig = DiffusionConfig()) -> Schedule:
    """Linear betas from ``beta_start`` to ``beta_end`` over T steps (DDPM; T=1000, 1e-4..0.02)."""
    betas = torch.linspace(config.beta_start, config.beta_end, config.num_timesteps, dtype=torch.float64)
    betas = torch.cat([torch.zeros(1, dtype=torch.float64), betas])  # beta_0 = 0: t = 0 is clean
    return Schedule(betas=betas, alpha_bars=torch.cumprod(1.0 - betas, dim=0))


def to_model_space(pixels01: torch.Tensor) -> torch.Tensor:
    return pixels01 * 2.0 - 1.0


def to_pixels(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped: what a person (and the classifier) sees."""
    return ((x + 1.0) * 0.5).clamp(0.0, 1.0)


def as_timesteps(t: int | torch.Tensor, batch: int, schedule: Schedule) -> torch.Tensor:
    """Broadcast an int or [B] tensor to int64 [B], checking 0 <= t <= T."""
    t = torch.as_tensor(t, dtype=torch.int64)
    t = t.expand(batch) if t.ndim == 0 else t
    if t.shape != (batch,):
        raise ValueError(f"timesteps must be a scalar or shape [{batch}], got {tuple(t.shape)}")
    if (t < 0).any() or (t > schedule.num_timesteps).any():
        raise ValueError(f"timesteps must lie in 0..{schedule.num_timesteps}, got {t.min().item()}..{t.max().item()}")
    return t


def q_sample(x0: torch.Tensor, t: int | torch.Tensor, schedule: Schedule,
             noise: torch.Tensor | None = None, generator: Noise = None) -> torch.Tensor:
    """Diffusing module D(x; t_D), eq. 12: x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) n.  [B,C,H,W]."""
    t = as_timesteps(t, x0.shape[0], schedule).cpu()
    if noise is None:
        noise = _randn_like(x0, generator)
    abar = schedule.alpha_bars[t]
    return _coef(abar.sqrt(), x0) * x0 + _coef((1.0 - abar).sqrt(), x0) * noise


def predict_x0_from_eps(x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    abar = schedule.alpha_bars[t.cpu()]
    return (x_t - _coef((1.0 - abar).sqrt(), x_t) * eps) * _coef(abar.rsqrt(), x_t)


def q_posterior(x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, schedule: Schedule) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of q(x_{t-1} | x_t, x_0) for t >= 1 (DDPM eq. 7). Shapes [B,C,H,W], [B,1,1,1]."""
    t = t.cpu()
    beta = schedule.betas[t]
    abar = schedule.alpha_bars[t]
    abar_prev = schedule.alpha_bars[(t - 1).clamp(min=0)]
    coef_x0 = beta * abar_prev.sqrt() / (1.0 - abar)
    coef_xt = (1.0 - beta).sqrt() * (1.0 - abar_prev) / (1.0 - abar)
    variance = beta * (1.0 - abar_prev) / (1.0 - abar)
    return _coef(coef_x0, x_t) * x0 + _coef(coef_xt, x_t) * x_t, _coef(variance, x_t)


def p_sample(predict_x0: X0Predictor, x_t: torch.Tensor, t: torch.Tensor, schedule: Schedule,
             generator: Noise = None, active: torch.Tensor | None = None) -> torch.Tensor:
    """One reverse step p(x_{t-1} | x_t) (eq. 20) with mean from the predicted x0; no noise at t = 1.
    ``active`` [B]: with per-row noise streams, the rows that take this step (the others draw nothing)."""
    x0_hat = predict_x0(x_t, t).clamp(-1.0, 1.0)
    mean, variance = q_posterior(x0_hat, x_t, t, schedule)
    noise = _randn_like(x_t, generator, active)
    keep_noise = _coef((t.cpu() > 1).double(), x_t)
    return mean + keep_noise * variance.sqrt() * noise


def denoise_ddpm(predict_x0: X0Predictor, x_tp: torch.Tensor, t_p: int | torch.Tensor, schedule: Schedule,
                 generator: Noise = None) -> torch.Tensor:
    """Asymmetric denoising (eqs. 21-23): treat ``x_tp`` as x_{t_P} and run the DDPM chain t_P -> 0.

    ``t_p`` may differ per sample ([B]): a sample joins the chain when the running t reaches its
    own t_P, so one batch can mix frames diffused with different t_D. t_P = 0 returns the input.
    """
    t_p = as_timesteps(t_p, x_tp.shape[0], schedule)
    x = x_tp
    for t in range(int(t_p.max().item()), 0, -1):
        active = t_p >= t
        t_now = torch.full_like(t_p, t)
        stepped = p_sample(predict_x0, x, t_now, schedule, generator, active)
        x = torch.where(active.to(x.device).view(-1, *([1] * (x.ndim - 1))), stepped, x)
    return x


def strided_timesteps(t_p: int, steps: int) -> list[int]:
    """Up to ``steps`` evenly spaced timesteps from t_P down to 0 (both ends included)."""
    steps = max(1, min(steps, t_p))
    return sorted({round(t_p * i / steps) for i in range(steps + 1)}, reverse=True)


def denoise_ddim(predict_x0: X0Predictor, x_tp: torch.Tensor, t_p: int | torch.Tensor, schedule: Schedule,
                 steps: int = 5, eta: float = 0.0, generator: Noise = None) -> torch.Tensor:
    """Strided DDIM-style sampler: the same t_P -> 0 purification in ``steps`` network calls.

    Per-sample t_P is handled by running each distinct t_P group separately.
    """
    t_p = as_timesteps(t_p, x_tp.shape[0], schedule)
    out = x_tp.clone()
    for value in t_p.unique().tolist():
        rows = (t_p == value).nonzero().flatten()
        x = x_tp[rows]
        group_noise = generator.subset(rows) if isinstance(generator, RowNoise) else generator
        path = strided_timesteps(int(value), steps)
        for t, t_next in zip(path[:-1], path[1:]):
            t_vec = torch.full((len(rows),), t, dtype=torch.int64)
            x0_hat = predict_x0(x, t_vec).clamp(-1.0, 1.0)
            abar = float(schedule.alpha_bars[t])
            abar_next = float(schedule.alpha_bars[t_next])
            eps = (x - abar ** 0.5 * x0_hat) / (1.0 - abar) ** 0.5
            sigma = eta * ((1 - abar_next) / (1 - abar) * (1 - abar / abar_next)) ** 0.5 if t_next > 0 else 0.0
            direction = max(0.0, 1.0 - abar_next - sigma ** 2) ** 0.5 * eps
            noise = _randn_like(x, group_noise) if sigma > 0 else 0.0
            x = abar_next ** 0.5 * x0_hat + direction + sigma * noise
        out[rows] = x
    return out
