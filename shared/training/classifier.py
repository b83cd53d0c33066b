"""Classifier training: the airbench recipe for ``kind="airbench"`` (shared/training/airbench.py), else
cross-entropy with label smoothing, SGD-Nesterov and a one-cycle LR."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..checkpoints import save_checkpoint
from ..data import augment
from ..models.classifier import Classifier
from . import airbench
from .common import PhaseContext, classifier_accuracy, seed_everything
from .distributed import mean_across, unwrap, wrap
from .loop import BatchPlan, linear_warmup_decay, run_loop, sgd_step


def build_classifier(preset, kind: str = "classifier") -> Classifier:
    """An untrained network for checkpoint ``kind`` ("classifier" or "classifier_at") of ``preset``."""
    return Classifier(preset.classifier_config(kind), preset.codec.channels, preset.num_classes)


def train_classifier(pc: PhaseContext) -> dict:
    if pc.preset.classifier.kind == "airbench":
        return train_classifier_airbench(pc)
    cfg, ctx = pc.preset.train, pc.ctx
    seed_everything(pc.seed)
    train, val = pc.train_and_val()
    model = build_classifier(pc.preset).to(ctx.device, memory_format=torch.channels_last)
    net = wrap(model, ctx)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.classifier_lr, momentum=0.9, nesterov=True,
                                weight_decay=cfg.classifier_weight_decay)
    plan = BatchPlan(len(train), cfg.classifier_batch, pc.seed, ctx)
    total = pc.steps(plan.steps_for(cfg.classifier_epochs))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup_decay(total))

    def step_fn(step: int) -> dict[str, float]:
        idx = plan.indices(step)
        x = augment(train.images[idx], padding=4, flip=pc.preset.dataset == "cifar10",
                    generator=plan.generator(step)).to(ctx.device).float().div_(255)
        y = train.labels[idx].to(ctx.device)
        logits = net(x.contiguous(memory_format=torch.channels_last))
        loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
        sgd_step(loss, optimizer, scheduler)
        return {"loss": loss.item(), "acc": (logits.argmax(1) == y).float().mean().item()}

    state = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    recent = run_loop("classifier", total, step_fn, state, Path(pc.out_dir) / "classifier.resume.pt", ctx)
    val_acc = mean_across(classifier_accuracy(unwrap(net), val.as_float(), val.labels), ctx)
    metrics = {"val_accuracy": round(val_acc, 4), "train_loss_last100": round(recent.get("loss", 0.0), 4),
               "steps": total, "epochs": round(total / plan.steps_per_epoch, 3)}
    if ctx.is_main:
        save_checkpoint(Path(pc.out_dir), "classifier", model.state_dict(), pc.preset.name,
                        {**pc.data_manifest(train), "metrics": metrics, "objective": "cross-entropy"})
        print(f"[classifier] held-out accuracy {val_acc:.4f} -> {Path(pc.out_dir) / 'classifier.pt'}", flush=True)
    return metrics


def train_classifier_airbench(pc: PhaseContext) -> dict:
    """The airbench recipe ``classifier_recipe`` for ``classifier_epochs`` epochs, bf16 autocast on the
    CPU, channels_last."""
    cfg, ctx = pc.preset.train, pc.ctx
    recipe = airbench.recipe_named(cfg.classifier_recipe)
    seed_everything(pc.seed)
    train, val = pc.train_and_val()
    model = build_classifier(pc.preset)
    with torch.no_grad():
        first = train.as_float(slice(0, 5000))
        model.net.whiten.weight.copy_(airbench.patch_whitening_weights((first - model.mean) / model.std))
    model = model.to(ctx.device, memory_format=torch.channels_last)
    net = wrap(model, ctx)
    optimizer = airbench.optimizer_for(model, recipe)
    plan = BatchPlan(len(train), recipe.batch_size, pc.seed, ctx)
    total = pc.steps(plan.steps_for(cfg.classifier_epochs))
    schedule = airbench.triangular_lr(total, recipe.lr_peak_at, recipe.lr_end)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    lookahead = airbench.Lookahead(model)
    whiten_bias_steps = int(recipe.whiten_bias_epochs * plan.steps_per_epoch)
    autocast = ctx.device.type == "cpu"
    cutout_fill = model.mean.cpu()   # the mean pixel: zero once normalised, as in airbench

    def step_fn(step: int) -> dict[str, float]:
        if step >= whiten_bias_steps:   # freeze the whitening bias (airbench trains it for 3 epochs)
            optimizer.param_groups[1]["lr"] = 0.0
        idx = plan.indices(step)
        x = airbench.augment_batch(train.images[idx].float().div_(255), recipe, cutout_fill, plan.generator(step))
        y = train.labels[idx].to(ctx.device)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = net(x.to(ctx.device).contiguous(memory_format=torch.channels_last))
        loss = airbench.summed_loss(logits, y, recipe)
        sgd_step(loss, optimizer, scheduler)
        if step % recipe.lookahead_every == 0:
            lookahead.pull(model, airbench.lookahead_decay(step, total, recipe))
        return {"loss": loss.item() / len(y), "acc": (logits.argmax(1) == y).float().mean().item()}

    state = {"model": model, "optimizer": optimizer, "scheduler": scheduler, "lookahead": lookahead}
    recent = run_loop("classifier", total, step_fn, state, Path(pc.out_dir) / "classifier.resume.pt", ctx)
    lookahead.pull(model, 1.0)   # end on the EMA weights
    val_acc = mean_across(classifier_accuracy(unwrap(net), val.as_float(), val.labels), ctx)
    metrics = {"val_accuracy": round(val_acc, 4), "train_loss_last100": round(recent.get("loss", 0.0), 4),
               "steps": total, "epochs": round(total / plan.steps_per_epoch, 3), "recipe": cfg.classifier_recipe}
    if ctx.is_main:
        save_checkpoint(Path(pc.out_dir), "classifier", model.state_dict(), pc.preset.name,
                        {**pc.data_manifest(train), "metrics": metrics,
                         "objective": f"cross-entropy, label smoothing 0.2 ({cfg.classifier_recipe} recipe)"})
        print(f"[classifier] held-out accuracy {val_acc:.4f} -> {Path(pc.out_dir) / 'classifier.pt'}", flush=True)
    return metrics
