"""``diffusec``: train the models, evaluate the pipeline in process, manage data."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from .presets import DEFAULT_PRESET, PRESETS

PRESET_OPTION = click.option("--preset", type=click.Choice(list(PRESETS)), default=DEFAULT_PRESET,
                             show_default=True, help="Model/training preset (see shared/presets.py).")
DATA_OPTION = click.option("--data-root", type=click.Path(file_okay=False), default=None,
                           help="Folder holding the dataset (default: $DIFFUSEC_DATA, ../shared/data, "
                                "~/.cache/diffusec/data, /usr/share/datasets).")
CKPT_OPTION = click.option("--checkpoints", type=click.Path(file_okay=False), default=None,
                           help="Checkpoint folder (default: $DIFFUSEC_CHECKPOINTS/<preset> or checkpoints/<preset>).")


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def main() -> None:
    """DiffuSeC Link: secure semantic communication with asymmetric diffusion.

    Train the models (`train`), measure the pipeline in one process (`eval`), fetch data (`data`).
    """


PHASES = ("semantic", "jsc", "joint", "denoiser", "classifier", "retrain", "all")


@main.command()
@click.argument("phase", type=click.Choice(PHASES))
@PRESET_OPTION
@DATA_OPTION
@CKPT_OPTION
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-steps", type=int, default=None, help="Stop each phase after this many steps (smoke tests).")
@click.option("--threads", type=int, default=None, help="torch threads (default: all cores, split across ranks).")
def train(phase: str, preset: str, data_root: str | None, checkpoints: str | None, seed: int,
          max_steps: int | None, threads: int | None) -> None:
    """Train PHASE of the pipeline (paper section V) and write checkpoints with manifests.

    \b
    semantic    ViT semantic encoder/decoder alone, SSIM loss (eq. 33)
    jsc         channel encoder/decoder on the semantic embeddings through AWGN, MSE (eq. 34)
    joint       the whole codec through the channel, SSIM loss (eq. 33)
    denoiser    U-Net on images that went through diffusing+codec+channel, eq. 35
    classifier  receiver classifier, cross-entropy on clean training images
    retrain     interactive retraining: fine-tune the classifier on the receiver's outputs
    all         every phase above, in order

    Runs resume from `<phase>.resume.pt` in the checkpoint folder after an interruption.
    Scale out with `torchrun --nproc-per-node N -m shared.cli train ...` (gloo on CPU, nccl on GPU).
    """
    import torch

    from .checkpoints import default_checkpoint_dir
    from .data import DataNotFoundError
    from .presets import get_preset
    from .training import run_phase
    from .training.common import PhaseContext
    from .training.distributed import init_distributed, shutdown

    if threads:
        torch.set_num_threads(threads)
    ctx = init_distributed()
    out_dir = Path(checkpoints) if checkpoints else default_checkpoint_dir(preset)
    pc = PhaseContext(get_preset(preset), out_dir, ctx, seed, data_root, max_steps)
    try:
        phases = [p for p in PHASES if p != "all"] if phase == "all" else [phase]
        for name in phases:
            run_phase(name, pc)
    except DataNotFoundError as err:
        _fail(str(err))
    finally:
        shutdown(ctx)


def _register_subgroups() -> None:
    from .data.cli import data
    main.add_command(data)


_register_subgroups()

if __name__ == "__main__":
    main()
