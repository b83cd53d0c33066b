"""PGD adversarial training of the receiver classifier (Madry et al.), for the ``jpeg-ldpc-at`` baseline.

The DiffuSeC paper's baseline "JPEG + LDPC + AT" (section VI-A) classifies with an adversarially
trained classifier; DiffuSeC itself deliberately does not. So this phase writes a *separate*
checkpoint, ``classifier_at.pt`` (+ ``classifier_at.json``), and never touches ``classifier.pt``.

Every step: augment the batch (pad 4 + crop, flips on CIFAR-10), craft l_inf PGD examples with
:func:`shared.attacks.source.pgd` (random start in the eps-ball, ``adversarial_steps`` signed steps
of ``adversarial_step_size``, projected to the ball and to [0, 1]) against the current weights
with the model in eval mode (BatchNorm uses running statistics and is not updated by the attack),
then one SGD update in train mode on cross-entropy (no label smoothing, which can mask gradients)
of the PGD images. ``adversarial_clean_fraction`` of each batch may be left clean (default 0:
Madry et al.'s all-adversarial objective). ``adversarial_init`` is ``"pretrained"`` (fine-tune
the preset's ``classifier.pt``) or ``"scratch"``.

The manifest's metrics are held-out clean accuracy (all held-out images) and held-out robust
accuracy under PGD-10 at ``adversarial_eps`` with step 2/255 and a random start (the first
``adversarial_eval_images`` held-out images), for the new weights and, when fine-tuning, for the
starting ``classifier.pt``.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..attacks.source import pgd
from ..checkpoints import CheckpointError, load_checkpoint, read_manifest, save_checkpoint
from ..data import augment
from ..models.classifier import Classifier
from .classifier import build_classifier
from .common import PhaseContext, classifier_accuracy, seed_everything
from .distributed import mean_across, unwrap, wrap
from .loop import BatchPlan, linear_warmup_decay, run_loop, sgd_step

KIND = "classifier_at"
INITS = ("pretrained", "scratch")
EVAL_STEPS = 10             # held-out robust accuracy: PGD-10 ...
EVAL_STEP_SIZE = 2 / 255    # ... of 2/255 signed steps, random start


def adversarial_batch(model: torch.nn.Module, x01: torch.Tensor, labels: torch.Tensor, cfg,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """The training inputs for one step: PGD examples (eval-mode model), the first
    ``round(adversarial_clean_fraction * B)`` rows left clean. Leaves ``model`` in its prior mode.
    """
    n_clean = int(round(cfg.adversarial_clean_fraction * len(x01)))
    was_training = model.training
    model.eval()
    x_adv = pgd(model, x01[n_clean:], labels[n_clean:], cfg.adversarial_eps, cfg.adversarial_steps,
                cfg.adversarial_pgd_step, random_start=True, generator=generator)
    model.train(was_training)
    return torch.cat([x01[:n_clean].detach(), x_adv]) if n_clean else x_adv


def robust_accuracy(model: torch.nn.Module, images01: torch.Tensor, labels: torch.Tensor, eps: float,
                    steps: int = EVAL_STEPS, step: float = EVAL_STEP_SIZE, batch: int = 250, seed: int = 0) -> float:
    """Top-1 accuracy under non-targeted l_inf PGD (random start) against ``model`` itself."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    correct = 0
    for i in range(0, len(labels), batch):
        x, y = images01[i:i + batch].to(device), labels[i:i + batch].to(device)
        x_adv = pgd(model, x, y, eps, steps, step, random_start=True, generator=g)
        with torch.no_grad():
            correct += (model(x_adv).argmax(1) == y).sum().item()
    model.train(was_training)
    return correct / max(1, len(labels))


def _evaluate(model, val, cfg) -> dict[str, float]:
    n = min(cfg.adversarial_eval_images, len(val))
    return {"clean": classifier_accuracy(model, val.as_float(), val.labels),
            "pgd": robust_accuracy(model, val.as_float()[:n], val.labels[:n], cfg.adversarial_eps)}


def train_adversarial_classifier(pc: PhaseContext) -> dict:
    cfg, ctx = pc.preset.train, pc.ctx
    _check_config(cfg)
    seed_everything(pc.seed)
    out_dir = Path(pc.out_dir)
    train, val = pc.train_and_val()
    model = build_classifier(pc.preset, "classifier_at")
    history, before = [], {}
    if cfg.adversarial_init == "pretrained":
        history, before = _start_from_classifier(pc, model, val)
    model = model.to(ctx.device, memory_format=torch.channels_last)
    net = wrap(model, ctx)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.adversarial_lr, momentum=0.9, nesterov=True,
                                weight_decay=cfg.classifier_weight_decay)
    plan = BatchPlan(len(train), cfg.adversarial_batch, pc.seed, ctx)
    total = pc.steps(plan.steps_for(cfg.adversarial_epochs))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup_decay(total))
    if ctx.is_main:
        print(f"[{KIND}] {cfg.describe_adversarial()}: {total} steps", flush=True)
    step_fn = _training_step(model, net, optimizer, scheduler, plan, train, pc)
    state = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    recent = run_loop(KIND, total, step_fn, state, resume_path=out_dir / f"{KIND}.resume.pt", ctx=ctx)
    module = unwrap(net)
    metrics = {**_final_metrics(module, val, cfg, ctx), **before,
               "train_loss_last100": round(recent.get("loss", 0.0), 4),
               "train_adv_accuracy_last100": round(recent.get("adv_acc", 0.0), 4),
               "steps": total, "epochs": round(total / plan.steps_per_epoch, 3)}
    if ctx.is_main:
        _save(pc, module, train, metrics, history)
    return metrics


def _check_config(cfg) -> None:
    if cfg.adversarial_init not in INITS:
        raise ValueError(f"adversarial_init must be one of {INITS}, got {cfg.adversarial_init!r}")
    if not 0.0 <= cfg.adversarial_clean_fraction < 1.0:
        raise ValueError(f"adversarial_clean_fraction must lie in [0, 1), got {cfg.adversarial_clean_fraction!r}")


def _start_from_classifier(pc: PhaseContext, model: Classifier, val) -> tuple[list, dict]:
    """Load classifier.pt into ``model``; the history it carries and, on the main rank, its held-out
    clean and PGD accuracy before adversarial training."""
    cfg, ctx, out_dir = pc.preset.train, pc.ctx, Path(pc.out_dir)
    if pc.preset.classifier_config("classifier_at") != pc.preset.classifier:
        raise CheckpointError(f"preset {pc.preset.name}: classifier_at is a {pc.preset.classifier_config('classifier_at').kind}"
                              f" network and classifier.pt a {pc.preset.classifier.kind}, so it cannot start from "
                              f"classifier.pt; set TrainConfig.adversarial_init='scratch' (see shared/presets.py)")
    model.load_state_dict(load_checkpoint(out_dir, "classifier", pc.preset.name))
    start_manifest = read_manifest(out_dir, "classifier")
    history = start_manifest.get("history", []) + [
        {"stage": "classifier.pt (start)", "commit": start_manifest.get("commit"), **start_manifest.get("metrics", {})}]
    if not ctx.is_main:
        return history, {}
    acc = _evaluate(model.to(ctx.device), val, cfg)
    n_eval = min(cfg.adversarial_eval_images, len(val))
    print(f"[{KIND}] start (classifier.pt): held-out clean {acc['clean']:.4f}, "
          f"PGD-{EVAL_STEPS} on {n_eval} {acc['pgd']:.4f}", flush=True)
    return history, {"val_accuracy_before": round(acc["clean"], 4), "val_pgd_accuracy_before": round(acc["pgd"], 4)}


def _training_step(model, net, optimizer, scheduler, plan: BatchPlan, train, pc: PhaseContext):
    """One step of PGD adversarial training: craft on the local module (no DDP sync), update through ``net``."""
    cfg, ctx = pc.preset.train, pc.ctx
    flip = pc.preset.dataset == "cifar10"

    def step_fn(step: int) -> dict[str, float]:
        idx = plan.indices(step)
        g = plan.generator(step)
        x = augment(train.images[idx], padding=4, flip=flip, generator=g).to(ctx.device).float().div_(255)
        x = x.contiguous(memory_format=torch.channels_last)
        y = train.labels[idx].to(ctx.device)
        x_train = adversarial_batch(model, x, y, cfg, generator=g)
        model.train()
        logits = net(x_train.contiguous(memory_format=torch.channels_last))
        loss = F.cross_entropy(logits, y)
        sgd_step(loss, optimizer, scheduler)
        return {"loss": loss.item(), "adv_acc": (logits.argmax(1) == y).float().mean().item()}

    return step_fn


def _final_metrics(module: Classifier, val, cfg, ctx) -> dict:
    acc = _evaluate(module, val, cfg)
    clean, robust = mean_across(acc["clean"], ctx), mean_across(acc["pgd"], ctx)
    n_eval = min(cfg.adversarial_eval_images, len(val))
    return {"val_accuracy": round(clean, 4), "val_pgd_accuracy": round(robust, 4),
            "eval": f"clean: {len(val)} held-out images; PGD: first {n_eval} held-out images, l_inf eps "
                    f"{cfg.adversarial_eps * 255:.3g}/255, {EVAL_STEPS} steps of {EVAL_STEP_SIZE * 255:.3g}/255, "
                    f"random start, white-box against this classifier"}


def _save(pc: PhaseContext, module: Classifier, train, metrics: dict, history: list) -> None:
    cfg, out_dir = pc.preset.train, Path(pc.out_dir)
    save_checkpoint(out_dir, KIND, module.state_dict(), pc.preset.name,
                    {**pc.data_manifest(train), "metrics": metrics, "history": history,
                     "init": cfg.adversarial_init,
                     "objective": f"PGD adversarial training (Madry et al.): {cfg.describe_adversarial()}; "
                                  "cross-entropy without label smoothing; PGD crafted in eval mode, "
                                  "update in train mode",
                     "used_by": "jpeg-ldpc-at baseline only (DiffuSeC's receiver uses classifier.pt)"})
    print(f"[{KIND}] held-out clean {metrics['val_accuracy']:.4f}, PGD-{EVAL_STEPS} {metrics['val_pgd_accuracy']:.4f}"
          f" -> {out_dir / f'{KIND}.pt'}", flush=True)


def load_adversarial_classifier(preset_name: str, checkpoint_dir: str | Path | None = None,
                                device: str | torch.device = "cpu") -> Classifier:
    """The adversarially trained classifier of ``preset_name`` (eval mode, frozen), for jpeg-ldpc-at.

    CheckpointError (saying how to train it) when ``classifier_at.pt`` is missing.
    """
    from ..pipeline import Pipeline

    return Pipeline.load(preset_name, checkpoint_dir, ("classifier",), device, classifier_kind=KIND).classifier
