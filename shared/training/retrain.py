"""Interactive retraining (attack paper, section II), adapted to DiffuSeC's receiver.

The attack paper retrains the task classifier on the decoder's outputs so that train-time and
test-time inputs match. Here one round: run ``retrain_images`` training images through the
plain DiffuSeC chain (t_D ~ U{1..50}, t_plus ~ U{0..50} per batch of 100, SNR ~ U[-3, 12] dB, the
preset's ``retrain_sampler``: the strided sampler with 5 calls, or the DDPM chain the receiver
defaults to, run under bf16 autocast), then fine-tune the classifier on batches that are half
receiver outputs and half clean images (so clean accuracy is kept).
The codec is not retrained with the classifier's loss here (the paper's second half of a round);
that would change the codec DiffuSeC's denoiser was trained against.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..checkpoints import load_checkpoint, read_manifest, save_checkpoint
from ..data import augment
from ..pipeline import Pipeline
from . import airbench
from .classifier import build_classifier
from .codec import random_snr_db
from .common import PhaseContext, classifier_accuracy, seed_everything
from .distributed import mean_across, unwrap, wrap
from .loop import BatchPlan, linear_warmup_decay, run_loop, sgd_step


@torch.no_grad()
def receiver_outputs(pipeline: Pipeline, images_u8: torch.Tensor, pc: PhaseContext, seed: int,
                     batch: int = 100) -> torch.Tensor:
    """Purified receiver images (uint8 [N,C,H,W]) for the given training images.

    One (t_D, t_plus) per batch of ``batch`` images: the strided sampler runs one group per distinct
    t_P, so per-image draws would mean ~100 tiny network calls per step.
    """
    cfg = pc.preset.train
    g = torch.Generator().manual_seed(seed)
    autocast = pipeline.device.type == "cpu"
    out = []
    for i in tqdm(range(0, len(images_u8), batch), desc="receiver outputs", disable=not pc.ctx.is_main,
                  dynamic_ncols=True, mininterval=2.0):
        x = images_u8[i:i + batch].to(pipeline.device).float().div(255)
        n = len(x)
        t_d = int(torch.randint(1, cfg.denoiser_max_t_d + 1, (1,), generator=g))
        t_plus = int(torch.randint(0, cfg.denoiser_max_t_plus + 1, (1,), generator=g))
        snr_db = random_snr_db(n, pc, g).to(pipeline.device)
        z_hat = pipeline.channel(pipeline.encode(pipeline.diffuse(x, t_d, g)), snr_db, g)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            purified = pipeline.purify(pipeline.decode(z_hat).float(), t_d + t_plus, sampler=cfg.retrain_sampler,
                                       steps=5, generator=g)
        out.append(purified.float().mul(255).round().to(torch.uint8).cpu())
    return torch.cat(out)


def cached_receiver_outputs(pipeline: Pipeline, images_u8: torch.Tensor, pc: PhaseContext, seed: int,
                            name: str) -> torch.Tensor:
    """:func:`receiver_outputs`, kept in ``<checkpoints>/receiver-outputs-<name>.pt`` for the next run.

    Making them is most of a retraining round on a CPU (about 6 minutes for 10,000 images with the
    DDPM chain), and they do not depend on the classifier: a second round, or a run with other
    fine-tuning settings, reuses them when the codec, denoiser, images, seed and draws are the same.
    """
    cfg = pc.preset.train
    key = {"codec": read_manifest(Path(pc.out_dir), "codec").get("created"),
           "denoiser": read_manifest(Path(pc.out_dir), "denoiser").get("created"),
           "images": len(images_u8), "checksum": int(images_u8[:64].sum()), "seed": seed,
           "sampler": cfg.retrain_sampler, "t_d": cfg.denoiser_max_t_d, "t_plus": cfg.denoiser_max_t_plus,
           "snr_db": list(cfg.train_snr_db)}
    rank = f"-rank{pc.ctx.rank}" if pc.ctx.world > 1 else ""
    path = Path(pc.out_dir) / f"receiver-outputs-{name}{rank}.pt"
    if path.exists():
        blob = torch.load(path, weights_only=True)
        if blob.get("key") == key:
            print(f"[retrain] reusing {len(blob['images'])} receiver outputs from {path}", flush=True)
            return blob["images"]
    images = receiver_outputs(pipeline, images_u8, pc, seed)
    torch.save({"key": key, "images": images}, path)
    return images


def retrain_classifier(pc: PhaseContext) -> dict:
    cfg, ctx = pc.preset.train, pc.ctx
    seed_everything(pc.seed)
    train, val = pc.train_and_val()
    pipeline = Pipeline.load(pc.preset.name, pc.out_dir, ("codec", "denoiser"), ctx.device)
    model = build_classifier(pc.preset)
    model.load_state_dict(load_checkpoint(Path(pc.out_dir), "classifier", pc.preset.name))
    averaging = check_weight_average(cfg.retrain_weight_average) < 1.0   # checked before the fine-tuning
    if averaging:   # the starting weights are kept only when used
        start_weights = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}

    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(pc.seed + 99))
    pick = pick[:min(cfg.retrain_images, len(train))]
    shard = pick[ctx.rank::ctx.world]
    received = cached_receiver_outputs(pipeline, train.images[shard], pc, pc.seed + ctx.rank, "train")
    labels = train.labels[shard]
    val_rx = cached_receiver_outputs(pipeline, val.images[:1000], pc, 4242, "val").float().div(255)
    acc_before = classifier_accuracy(model, val_rx, val.labels[:1000])

    model = model.to(ctx.device, memory_format=torch.channels_last)
    net = wrap(model, ctx)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.retrain_lr, momentum=0.9, nesterov=True,
                                weight_decay=cfg.classifier_weight_decay)
    half = max(1, (cfg.retrain_batch or cfg.classifier_batch) // 2)
    plan = BatchPlan(len(received), half, pc.seed, type(ctx)(0, 1, ctx.device))  # indices into this rank's shard
    clean_plan = BatchPlan(len(train), half, pc.seed + 1, type(ctx)(0, 1, ctx.device))
    total = pc.steps(plan.steps_for(cfg.retrain_epochs))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup_decay(total, 0.1))
    flip = pc.preset.dataset == "cifar10"
    autocast = ctx.device.type == "cpu" and pc.preset.classifier.kind == "airbench"
    # The airbench recipe's smoothing (0.2) for its network, the preset's otherwise.
    airbench_net = pc.preset.classifier.kind == "airbench"
    smoothing = airbench.recipe_named(cfg.classifier_recipe).label_smoothing if airbench_net else cfg.label_smoothing

    def step_fn(step: int) -> dict[str, float]:
        g = plan.generator(step)
        idx, cidx = plan.indices(step), clean_plan.indices(step)
        x = torch.cat([augment(received[idx], 4, flip, g), augment(train.images[cidx], 4, flip, g)])
        x = x.to(ctx.device).float().div_(255)
        y = torch.cat([labels[idx], train.labels[cidx]]).to(ctx.device)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = net(x.contiguous(memory_format=torch.channels_last))
        loss = F.cross_entropy(logits.float(), y, label_smoothing=smoothing)
        sgd_step(loss, optimizer, scheduler)
        return {"loss": loss.item()}

    state = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    run_loop("retrain", total, step_fn, state, Path(pc.out_dir) / "classifier-retrain.resume.pt", ctx)
    module = unwrap(net)
    if averaging:
        module.load_state_dict(interpolate_weights(start_weights, module.state_dict(), cfg.retrain_weight_average))
    acc_rx = mean_across(classifier_accuracy(module, val_rx, val.labels[:1000]), ctx)
    acc_clean = mean_across(classifier_accuracy(module, val.as_float(), val.labels), ctx)
    metrics = {"val_accuracy": round(acc_clean, 4), "val_accuracy_receiver_outputs_before": round(acc_before, 4),
               "val_accuracy_receiver_outputs_after": round(acc_rx, 4), "retrain_steps": total,
               "retrain_images": len(pick), "retrain_sampler": cfg.retrain_sampler,
               "retrain_weight_average": cfg.retrain_weight_average}
    if ctx.is_main:
        _save_retrained(pc, module, train, metrics)
    return metrics


def interpolate_weights(start: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor],
                        alpha: float) -> dict[str, torch.Tensor]:
    """WiSE-FT (Wortsman et al., 2022, "Robust fine-tuning of zero-shot models"): the weights
    (1 - alpha) * start + alpha * tuned, for every floating tensor (batch-norm statistics included);
    integer buffers (batch counters) come from ``tuned``. alpha = 1: the fine-tuned model.

    Fine-tuning on receiver outputs costs clean accuracy; a point between the two networks keeps
    most of both when they share their starting point, as here."""
    check_weight_average(alpha)
    return {name: ((1 - alpha) * start[name].to(t.dtype) + alpha * t) if t.is_floating_point() else t
            for name, t in tuned.items()}


def check_weight_average(alpha: float) -> float:
    """``alpha`` if it lies in [0, 1]; ValueError otherwise."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"the weight-average coefficient must lie in [0, 1], got {alpha!r}")
    return alpha


def _save_retrained(pc: PhaseContext, module, train, metrics: dict) -> None:
    before_manifest = read_manifest(Path(pc.out_dir), "classifier")
    history = before_manifest.get("history", []) + [{"stage": "pretrain", **before_manifest.get("metrics", {})}]
    averaged = metrics["retrain_weight_average"] < 1.0
    save_checkpoint(Path(pc.out_dir), "classifier", module.state_dict(), pc.preset.name,
                    {**pc.data_manifest(train), "metrics": metrics, "history": history,
                     "objective": "cross-entropy; interactive retraining on receiver outputs (1 round)"
                                  + ("; WiSE-FT weight average with the starting classifier" if averaged else "")})
    print(f"[retrain] {metrics}", flush=True)
