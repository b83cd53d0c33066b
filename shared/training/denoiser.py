"""Denoiser training, paper section V-B, loss eq. 35 on the predicted clean image.

The receiver treats the decoded image x_hat as x_{t_P} (t_P = t_D + t_plus) and runs the reverse
chain t_P -> 0. The network therefore sees two kinds of input, and each batch holds both halves:

- chain inputs: training images diffused at t_D ~ U{1..50}, encoded, sent through AWGN at an SNR
  ~ U[-3, 12] dB, decoded (the "images that go through the whole semantic communication" of V-B),
  labelled with t = t_D + t_plus, t_plus ~ U{0..50}: the first reverse step;
- DDPM inputs: q_sample(x, t), t ~ U{1..100}: the states the later reverse steps pass through.

Objective "x0-eq35" (default) predicts x0 and applies eq. 35 to it:
zeta * iota' * (1 - SSIM(x, x0_hat)) + (1 - zeta) * MSE(x, x0_hat), zeta = 0.8, iota' = 0.5.
Objective "eps" is the standard DDPM epsilon-MSE on the DDPM half only, kept for comparison.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import torch.nn.functional as F

from ..channel import awgn
from ..checkpoints import load_checkpoint, read_manifest, save_checkpoint
from ..data import augment
from ..diffusion import linear_beta_schedule, q_sample, to_model_space
from ..losses import purification_loss, ssim01
from ..models.codec import Codec
from ..models.unet import UNet
from .codec import random_snr_db
from .common import PhaseContext, seed_everything
from .distributed import mean_across, unwrap, wrap
from .loop import BatchPlan, cosine_with_warmup, run_loop


def load_codec(pc: PhaseContext) -> Codec:
    codec = Codec(pc.preset.codec)
    codec.load_state_dict(load_checkpoint(Path(pc.out_dir), "codec", pc.preset.name))
    return codec.to(pc.ctx.device).eval().requires_grad_(False)


@torch.no_grad()
def chain_outputs(codec: Codec, x: torch.Tensor, t_d: torch.Tensor, snr_db: torch.Tensor, schedule,
                  generator: torch.Generator) -> torch.Tensor:
    """x_hat = F^-1(F(D(x; t_D)) + n_c): what reaches the receiver's denoiser (eq. 14)."""
    return codec.decode(awgn(codec.encode(q_sample(x, t_d, schedule, generator=generator)), snr_db, generator))


def denoiser_batch(codec: Codec, images_u8: torch.Tensor, pc: PhaseContext, schedule,
                   g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> (x0 clean [B,C,H,W], x_t network input, t [B], eps used for the DDPM half (zeros elsewhere))."""
    cfg = pc.preset.train
    x0 = to_model_space(augment(images_u8, 4, pc.preset.dataset == "cifar10", g).to(pc.ctx.device).float().div_(255))
    half = len(x0) // 2
    t_d = torch.randint(1, cfg.denoiser_max_t_d + 1, (half,), generator=g)
    t_plus = torch.randint(0, cfg.denoiser_max_t_plus + 1, (half,), generator=g)
    x_hat = chain_outputs(codec, x0[:half], t_d, random_snr_db(half, pc, g).to(x0.device), schedule, g)
    t_ddpm = torch.randint(1, cfg.denoiser_max_t_d + cfg.denoiser_max_t_plus + 1, (len(x0) - half,), generator=g)
    eps = torch.randn(x0[half:].shape, generator=g).to(x0.device)
    x_ddpm = q_sample(x0[half:], t_ddpm, schedule, noise=eps)
    eps_all = torch.cat([torch.zeros_like(x_hat), eps])
    return x0, torch.cat([x_hat, x_ddpm]), torch.cat([t_d + t_plus, t_ddpm]).to(x0.device), eps_all


def train_denoiser(pc: PhaseContext, objective: str | None = None) -> dict:
    cfg, ctx = pc.preset.train, pc.ctx
    seed_everything(pc.seed)
    train, val = pc.train_and_val()
    dcfg = pc.preset.denoiser if objective is None else dataclasses.replace(pc.preset.denoiser, objective=objective)
    codec = load_codec(pc)
    schedule = linear_beta_schedule(pc.preset.diffusion)
    model = UNet(dcfg, pc.preset.codec.channels)
    if cfg.denoiser_init == "checkpoint":   # a codec change shifts the inputs a little: start from what works
        model.load_state_dict(load_checkpoint(Path(pc.out_dir), "denoiser", pc.preset.name))
    elif cfg.denoiser_init != "scratch":
        raise ValueError(f"denoiser_init must be 'scratch' or 'checkpoint', got {cfg.denoiser_init!r}")
    model = model.to(ctx.device)
    net = wrap(model, ctx)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.denoiser_lr, weight_decay=1e-4)
    plan = BatchPlan(len(train), cfg.denoiser_batch, pc.seed, ctx)
    total = pc.steps(plan.steps_for(cfg.denoiser_epochs))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_with_warmup(total, min(200, total // 10 + 1)))

    def step_fn(step: int) -> dict[str, float]:
        g = plan.generator(step)
        x0, x_t, t, eps = denoiser_batch(codec, train.images[plan.indices(step)], pc, schedule, g)
        # bf16 autocast on the CPU (AMX): 0.234 s vs 0.358 s per U-Net step of 128 (1.5x); losses in float32.
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=ctx.device.type == "cpu"):
            out = net(x_t, t).float()
        if dcfg.objective == "x0-eq35":
            loss = purification_loss(x0, out, cfg.zeta, cfg.iota_prime)
        else:
            half = len(x0) // 2
            loss = F.mse_loss(out[half:], eps[half:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        return {"loss": loss.item()}

    state = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    recent = run_loop("denoiser", total, step_fn, state, Path(pc.out_dir) / "denoiser.resume.pt", ctx)
    metrics = {"loss_last100": round(recent.get("loss", 0.0), 5), "steps": total,
               **validate_denoiser(codec, unwrap(net), val, pc, schedule, ctx)}
    if ctx.is_main:
        kind = "denoiser" if objective is None else f"denoiser-{objective}"
        codec_manifest = read_manifest(Path(pc.out_dir), "codec")
        save_checkpoint(Path(pc.out_dir), kind, model.state_dict(), pc.preset.name,
                        {**pc.data_manifest(train), "metrics": metrics, "objective": dcfg.objective,
                         "denoiser_config": dataclasses.asdict(dcfg), "init": cfg.denoiser_init,
                         "codec_used": {k: codec_manifest.get(k) for k in ("created", "commit", "stage")}})
        print(f"[denoiser] {metrics}", flush=True)
    return metrics


@torch.no_grad()
def validate_denoiser(codec: Codec, model: UNet, val, pc: PhaseContext, schedule, ctx, n: int = 300) -> dict:
    """Held-out SSIM before/after one x0 prediction at t_D = t_P = 20, 3 dB (a cheap progress check)."""
    model.eval()
    g = torch.Generator().manual_seed(11)
    x0 = to_model_space(val.as_float(slice(0, n))).to(pc.ctx.device)
    t = torch.full((len(x0),), 20, dtype=torch.int64, device=x0.device)
    x_hat = chain_outputs(codec, x0, t, torch.full((len(x0),), 3.0, device=x0.device), schedule, g)
    x0_hat = model.predict_x0(x_hat, t, schedule).clamp(-1, 1)
    model.train()
    before = ssim01((x0 + 1) / 2, ((x_hat + 1) / 2).clamp(0, 1)).item()
    after = ssim01((x0 + 1) / 2, (x0_hat + 1) / 2).item()
    return {"val_ssim_decoded_3db_t20": round(mean_across(before, ctx), 4),
            "val_ssim_x0hat_3db_t20": round(mean_across(after, ctx), 4)}
