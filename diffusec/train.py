"""``diffusec train PHASE``: train one phase of the pipeline (or all), on one process or under torchrun."""
from __future__ import annotations


import click

from shared.cli_options import (checkpoints_option, data_root_option, fail, fail_on, preset_option, seed_option,
                                set_threads, threads_option)
from shared.presets import EPOCHS_FIELD, PRESETS

from .agent import train_agent_command

_CIFAR10_EPOCHS = ", ".join(f"{'--adversarial' if phase == 'classifier_at' else phase} "
                            f"{getattr(PRESETS['cifar10'].train, field):g}" for phase, field in EPOCHS_FIELD.items())

PHASES = ("semantic", "jsc", "joint", "denoiser", "classifier", "retrain", "all")
# The presets whose adversarial-training settings `train --help` spells out (the others follow cifar10's).
ADVERSARIAL_HELP_PRESETS = ("cifar10", "paper-cifar10")


class _TrainCommand(click.Command):
    """`diffusec train PHASE`, and `diffusec train agent ...` handed to the agent's own command and options."""

    def make_context(self, info_name, args, parent=None, **extra):
        if args[:1] == ["agent"]:
            return train_agent_command.make_context(f"{info_name} agent", args[1:], parent=parent, **extra)
        return super().make_context(info_name, args, parent=parent, **extra)


def phases_to_run(phase: str, adversarial: bool) -> list[str]:
    """The phases ``diffusec train PHASE`` runs, in order (``all``: every phase but the agent)."""
    if adversarial:
        return ["classifier_at"]
    return [p for p in PHASES if p != "all"] if phase == "all" else [phase]


@click.command(cls=_TrainCommand)
@click.argument("phase", type=click.Choice(PHASES))
@preset_option()
@data_root_option()
@checkpoints_option()
@seed_option()
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Stop each phase after this many steps (smoke tests).")
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Train the phase for this many epochs instead of the preset's (one phase, not `all`; the "
                   "manifest's preset_config records the value used). cifar10 defaults: "
                   + _CIFAR10_EPOCHS + ".")
@threads_option("torch threads (default: all cores, split across ranks).")
@click.option("--channel", "train_channel", type=click.Choice(["awgn", "rayleigh"]), default=None,
              help="jsc and joint: the channel to train through, instead of the preset's (awgn): rayleigh block "
                   "fading, one coefficient per image, perfect CSI, zf. E.g. fine-tune a copy of the codec for "
                   "fading: `diffusec train joint --channel rayleigh --epochs 1 --checkpoints COPY`.")
@click.option("--fine-tune", is_flag=True,
              help="With `denoiser`: start from the folder's denoiser.pt instead of random weights, e.g. after the "
                   "codec changed: `diffusec train denoiser --fine-tune --epochs 4 --checkpoints COPY`.")
@click.option("--adversarial", is_flag=True,
              help="With `classifier`: PGD adversarial training (Madry et al.) into a separate classifier_at.pt "
                   "for the jpeg-ldpc-at baseline; classifier.pt is left alone. Settings: the preset's "
                   "TrainConfig.adversarial_* fields; " + "; ".join(
                       f"{name}: {PRESETS[name].train.describe_adversarial()}" for name in ADVERSARIAL_HELP_PRESETS)
                   + ".")
def train(phase: str, preset: str, data_root: str | None, checkpoints: str | None, seed: int,
          max_steps: int | None, epochs: float | None, threads: int | None, train_channel: str | None,
          fine_tune: bool, adversarial: bool) -> None:
    """Train PHASE of the pipeline (paper section V) and write checkpoints with manifests.

    \b
    semantic    ViT semantic encoder/decoder alone, SSIM loss (eq. 33)
    jsc         channel encoder/decoder on the semantic embeddings through AWGN, MSE (eq. 34)
    joint       the whole codec through the channel, SSIM loss (eq. 33)
    denoiser    U-Net on images that went through diffusing+codec+channel, eq. 35
    classifier  receiver classifier, cross-entropy on clean training images
                (--adversarial: PGD-trained classifier_at.pt for the jpeg-ldpc-at baseline)
    retrain     interactive retraining: fine-tune the classifier on the receiver's outputs
    all         every phase above, in order
    agent       the DDPG step-selection agent (IV-D), not part of all: see `diffusec train agent --help`

    Runs resume from `<phase>.resume.pt` in the checkpoint folder after an interruption.
    Scale out with `torchrun --nproc-per-node N -m diffusec train ...` (gloo on CPU, nccl on GPU).
    """
    from shared.checkpoints import CheckpointError, resolve_checkpoint_dir
    from shared.data import DataNotFoundError
    from shared.presets import get_preset
    from shared.training import run_phase
    from shared.training.common import PhaseContext
    from shared.training.distributed import init_distributed, shutdown

    if adversarial and phase != "classifier":
        fail("--adversarial goes with `diffusec train classifier` only")
    if fine_tune and phase != "denoiser":
        fail("--fine-tune goes with `diffusec train denoiser` only")
    if epochs is not None and phase == "all":
        fail("--epochs sets one phase's length: name the phase (e.g. `diffusec train denoiser --epochs 6`)")
    set_threads(threads)
    ctx = init_distributed()
    phases = phases_to_run(phase, adversarial)
    chosen = get_preset(preset) if epochs is None else get_preset(preset).with_epochs(phases[0], epochs)
    if train_channel is not None:
        if not set(phases) <= {"jsc", "joint"}:
            fail("--channel goes with `diffusec train jsc` or `joint` (the codec's channel phases)")
        chosen = chosen.with_train(train_channel=train_channel)
    if fine_tune:
        chosen = chosen.with_train(denoiser_init="checkpoint")
    out_dir = resolve_checkpoint_dir(preset, checkpoints)
    pc = PhaseContext(chosen, out_dir, ctx, seed, data_root, max_steps)
    try:
        with fail_on(DataNotFoundError, CheckpointError):   # e.g. `train denoiser` before the codec exists
            for name in phases:
                run_phase(name, pc)
    finally:
        shutdown(ctx)
