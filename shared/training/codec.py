"""Codec training, paper section V-A, in three phases that refine one ``codec.pt``:

semantic  S and S^-1 alone (no channel), loss eq. 33 (iota * (1 - SSIM))
jsc       C and C^-1 on the frozen semantic embeddings through AWGN, loss eq. 34 (MSE)
joint     everything through AWGN, loss eq. 33

(``TrainConfig.train_channel`` = "rayleigh" trains jsc and joint through block fading instead:
``diffusec train joint --channel rayleigh`` fine-tunes a codec for fading channels.)

Inputs are what the sender encodes: training images, diffused (eq. 12) at a random
t_D in 0..50 for half of each batch, so the codec learns the distribution it will see;
the target is the codec's own input (eq. 17 assumes F^-1(F(x)) ~= x, the codec does not purify).
SNR is drawn per image from the preset's training range (-3..12 dB).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..fading import LinkChannel, transmit
from ..checkpoints import load_checkpoint, read_manifest, save_checkpoint
from ..data import augment
from ..diffusion import linear_beta_schedule, q_sample, to_model_space
from ..losses import jsc_loss, semantic_loss, ssim01
from ..models.codec import Codec
from .common import PhaseContext, seed_everything
from .distributed import average_gradients, broadcast_parameters, mean_across
from .loop import BatchPlan, cosine_with_warmup, run_loop

PREVIOUS = {"semantic": None, "jsc": "semantic", "joint": "jsc"}


def sender_inputs(images_u8: torch.Tensor, pc: PhaseContext, generator: torch.Generator,
                  diffuse_fraction: float = 0.5) -> torch.Tensor:
    """Augmented training images in [-1, 1], a fraction of them diffused at t ~ U{1..max_t_D}."""
    x = to_model_space(augment(images_u8, 4, pc.preset.dataset == "cifar10", generator).to(pc.ctx.device).float().div_(255))
    schedule = linear_beta_schedule(pc.preset.diffusion)
    t = torch.randint(1, pc.preset.train.denoiser_max_t_d + 1, (len(x),), generator=generator)
    t = torch.where(torch.rand(len(x), generator=generator) < diffuse_fraction, t, torch.zeros_like(t))
    # q_sample draws its noise from the CPU generator and moves it to x's device
    return q_sample(x, t, schedule, generator=generator)


def random_snr_db(batch: int, pc: PhaseContext, generator: torch.Generator) -> torch.Tensor:
    low, high = pc.preset.train.train_snr_db
    return (low + (high - low) * torch.rand(batch, generator=generator)).to(pc.ctx.device)


def train_codec_phase(phase: str, pc: PhaseContext) -> dict:
    cfg, ctx = pc.preset.train, pc.ctx
    seed_everything(pc.seed)
    train, val = pc.train_and_val()
    codec, history = _starting_codec(phase, pc)
    params, batch, epochs, lr = _trainable(phase, codec, cfg)
    # Data parallelism by hand: the step calls encode/decode, not forward, so a DDP wrapper would
    # never synchronise the gradients (DDP only hooks backward passes that went through forward).
    broadcast_parameters(codec, ctx)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    plan = BatchPlan(len(train), batch, pc.seed, ctx)
    total = pc.steps(plan.steps_for(epochs))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_with_warmup(total, min(200, total // 10 + 1)))

    def step_fn(step: int) -> dict[str, float]:
        g = plan.generator(step)
        loss = _phase_loss(phase, codec, sender_inputs(train.images[plan.indices(step)], pc, g), pc, g)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(params, ctx)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        return {"loss": loss.item()}

    state = {"codec": codec, "optimizer": optimizer, "scheduler": scheduler}
    recent = run_loop(phase, total, step_fn, state, Path(pc.out_dir) / f"codec-{phase}.resume.pt", ctx)
    metrics = {f"{phase}_loss_last100": round(recent.get("loss", 0.0), 5), f"{phase}_steps": total}
    metrics.update(validate_codec(codec, val, pc, ctx))
    history.append({"stage": phase, **metrics})
    if ctx.is_main:
        save_checkpoint(Path(pc.out_dir), "codec", codec.state_dict(), pc.preset.name,
                        {**pc.data_manifest(train), "stage": phase, "history": history, "metrics": metrics,
                         "bandwidth_ratio": pc.preset.codec.bandwidth_ratio,
                         "objective": {"semantic": "eq33", "jsc": "eq34", "joint": "eq33"}[phase]})
        print(f"[{phase}] {metrics}", flush=True)
    return metrics


def _starting_codec(phase: str, pc: PhaseContext) -> tuple[Codec, list[dict]]:
    """The codec a phase starts from (the previous phase's checkpoint where there is one) and its history."""
    codec = Codec(pc.preset.codec)
    history: list[dict] = []
    previous = PREVIOUS[phase]
    manifest = read_manifest(Path(pc.out_dir), "codec")
    if previous and manifest.get("stage") in (previous, phase, "joint"):
        codec.load_state_dict(load_checkpoint(Path(pc.out_dir), "codec", pc.preset.name))
        history = manifest.get("history", [])
    elif previous and pc.ctx.is_main:
        print(f"[{phase}] no '{previous}' codec in {pc.out_dir}: starting from random weights", flush=True)
    return codec.to(pc.ctx.device), history


def _trainable(phase: str, codec: Codec, cfg) -> tuple[list[torch.nn.Parameter], int, float, float]:
    """The parameters a phase trains (the rest frozen), its batch size, epochs and learning rate."""
    if phase == "semantic":
        params = list(codec.semantic_encoder.parameters()) + list(codec.semantic_decoder.parameters())
        batch, epochs, lr = cfg.semantic_batch, cfg.semantic_epochs, cfg.codec_lr
    elif phase == "jsc":
        params = list(codec.channel_encoder.parameters()) + list(codec.channel_decoder.parameters())
        batch, epochs, lr = cfg.jsc_batch, cfg.jsc_epochs, cfg.codec_lr
    else:
        params = list(codec.parameters())
        batch, epochs, lr = cfg.joint_batch, cfg.joint_epochs, cfg.codec_lr * 0.5
    for p in codec.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    return params, batch, epochs, lr


def _phase_loss(phase: str, codec: Codec, x: torch.Tensor, pc: PhaseContext, g: torch.Generator) -> torch.Tensor:
    """semantic: eq. 33 through the ViT alone; jsc: eq. 34 on the embeddings through AWGN; joint: eq. 33
    through the whole codec and AWGN. ``x``: [B, C, H, W] sender inputs in [0, 1]."""
    cfg = pc.preset.train
    if phase == "semantic":
        return semantic_loss(x, codec.semantic_roundtrip(x), cfg.iota)
    if phase == "jsc":
        with torch.no_grad():
            y = codec.semantic_encoder(x)
        snr_db = random_snr_db(len(x), pc, g)
        y_hat = codec.channel_decoder(through_training_channel(codec.channel_encoder(y), snr_db, pc, g))
        return jsc_loss(y, y_hat)
    z_hat = through_training_channel(codec.encode(x), random_snr_db(len(x), pc, g), pc, g)
    return semantic_loss(x, codec.decode(z_hat), cfg.iota)


def through_training_channel(z: torch.Tensor, snr_db, pc: PhaseContext, generator: torch.Generator) -> torch.Tensor:
    """z [B, L] through the preset's training channel (``TrainConfig.train_channel``): AWGN
    (shared.channel.awgn, bit for bit), or block fading with perfect CSI and zf (shared.fading)."""
    return transmit(z, snr_db, LinkChannel(pc.preset.train.train_channel), generator)


@torch.no_grad()
def validate_codec(codec: Codec, val, pc: PhaseContext, ctx, n: int = 500) -> dict:
    """Held-out SSIM of clean images through the codec and the training channel at 3 and 12 dB (no diffusion)."""
    codec.eval()
    x = to_model_space(val.as_float(slice(0, n))).to(pc.ctx.device)
    out = {}
    for snr in (3.0, 12.0):
        g = torch.Generator().manual_seed(7)
        x_hat = codec.decode(through_training_channel(codec.encode(x), snr, pc, g))
        out[f"val_ssim_{snr:g}db"] = round(mean_across(ssim01((x + 1) / 2, ((x_hat + 1) / 2).clamp(0, 1)).item(), ctx), 4)
    codec.train()
    return out
