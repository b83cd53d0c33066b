"""Classifier training: cross-entropy with label smoothing, SGD-Nesterov, one-cycle LR."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..checkpoints import save_checkpoint
from ..data import augment
from ..models.classifier import Classifier
from .common import PhaseContext, classifier_accuracy, seed_everything
from .distributed import mean_across, unwrap, wrap
from .loop import BatchPlan, linear_warmup_decay, run_loop, sgd_step


def build_classifier(preset) -> Classifier:
    return Classifier(preset.classifier, preset.codec.channels, preset.num_classes)


def train_classifier(pc: PhaseContext) -> dict:
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
