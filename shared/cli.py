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

    Train the models (`train`), measure the pipeline in one process (`eval`), fetch data (`data`);
    run the gRPC link locally (`up`, `demo`), measure it (`bench`), probe a service (`health`).
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


def load_eval_data(preset_name: str, data_root: str | None, source: str, n: int | None, seed: int):
    """The test split (or the embedded sample), first ``n`` of a seeded permutation."""
    from .data import DataNotFoundError, load_sample, load_split
    from .presets import get_preset

    dataset = get_preset(preset_name).dataset
    if source == "sample":
        data = load_sample(dataset)
    else:
        try:
            data = load_split(dataset, "test", data_root)
        except DataNotFoundError as err:
            if source == "test":
                raise
            data = load_sample(dataset)
            what = str(err).splitlines()[0].removesuffix(" Tried:")
            click.echo(f"note: {what} (`diffusec data info` lists the paths tried); using the {data.description}",
                       err=True)
    return data.subset(n, seed)


@main.command("eval")
@PRESET_OPTION
@click.option("--system", type=click.Choice(["classifier", "vit", "plain"]), default="plain", show_default=True,
              help="classifier: classifier alone on clean images; vit: the link without diffusion "
                   "(the paper's ViT-based); plain: DiffuSeC with fixed symmetric steps.")
@click.option("--snr-db", type=float, default=15.0, show_default=True, help="AWGN channel SNR in dB.")
@click.option("--n", "n", type=click.IntRange(min=1), default=1000, show_default=True, help="Number of test images.")
@click.option("--t-d", "t_d", type=click.IntRange(0, 1000), default=20, show_default=True,
              help="Diffusing timesteps t_D at the sender (plain).")
@click.option("--t-plus", "t_plus", type=click.IntRange(0, 1000), default=0, show_default=True,
              help="Plus steps: the receiver denoises from t_P = t_D + t_plus (plain).")
@click.option("--sampler", type=click.Choice(["ddpm", "ddim"]), default="ddpm", show_default=True,
              help="ddpm: the full reverse chain t_P -> 0 (t_P network calls); ddim: strided, --steps calls.")
@click.option("--steps", type=click.IntRange(min=1), default=5, show_default=True, help="Network calls for --sampler ddim.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the image choice and all noise.")
@click.option("--data", "source", type=click.Choice(["auto", "test", "sample"]), default="auto", show_default=True,
              help="test: the preset's test split (error if absent); sample: the embedded sample; "
                   "auto: test split if found, else the embedded sample.")
@DATA_OPTION
@CKPT_OPTION
@click.option("--batch", type=click.IntRange(min=1), default=250, show_default=True)
@click.option("--threads", type=int, default=None, help="torch threads (default: all cores).")
@click.option("--device", default="cpu", show_default=True, help="torch device for the models, e.g. cuda.")
@click.option("--grid", type=click.Path(dir_okay=False), default=None,
              help="Also write a PNG of the first 10 images: original and what the receiver ends with.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object as the last stdout line.")
def eval_command(preset, system, snr_db, n, t_d, t_plus, sampler, steps, seed, source, data_root, checkpoints,
                 batch, threads, device, grid, as_json) -> None:
    """Measure accuracy and SSIM of SYSTEM on the test split, in one process.

    SSIM is between each original test image and what the receiver ends with (after purification
    for plain), averaged over images. Accuracy and SSIM are in [0, 1].
    """
    import math

    import torch

    from .checkpoints import CheckpointError
    from .data import DataNotFoundError
    from .evaluate import evaluate
    from .pipeline import Pipeline

    if threads:
        torch.set_num_threads(threads)
    if not math.isfinite(snr_db):
        _fail(f"--snr-db must be a finite number of dB, got {snr_db}")
    if t_d + t_plus > 1000:
        _fail(f"t_P = t_D + t_plus = {t_d + t_plus} exceeds T = 1000 diffusion steps")
    parts = {"classifier": ("classifier",), "vit": ("codec", "classifier"),
             "plain": ("codec", "denoiser", "classifier")}[system]
    try:
        pipeline = Pipeline.load(preset, checkpoints, parts, device)
        data = load_eval_data(preset, data_root, source, n, seed)
    except (CheckpointError, DataNotFoundError, FileNotFoundError) as err:
        _fail(str(err))
    result = evaluate(pipeline, data, system, snr_db, t_d, t_plus, seed, batch, sampler, steps,
                      progress=not as_json and sys.stderr.isatty())
    payload = result.to_dict()
    if grid:
        from .imaging import save_grid

        shown = data.as_float(slice(0, 10))
        received, _ = pipeline.run(system, shown, snr_db, t_d, t_plus, sampler, steps,
                                   torch.Generator().manual_seed(seed))
        label = {"classifier": "input", "vit": f"vit {snr_db:g} dB", "plain": f"plain {snr_db:g} dB t={t_d}+{t_plus}"}[system]
        payload["grid"] = str(save_grid([("original", shown), (label, received)], grid))
    if as_json:
        click.echo(json.dumps(payload))
        return
    click.echo(f"{system} on {result.data}")
    for key in ("accuracy", "ssim", "snr_db", "t_d", "t_plus", "sampler", "sampler_steps", "bandwidth_ratio",
                "channel_symbols", "n", "wall_time_s", "images_per_s", "grid"):
        if payload.get(key) is not None:
            click.echo(f"  {key:16s} {payload[key]}")


def _register_subgroups() -> None:
    from .data.cli import data
    from .link_cli import register
    main.add_command(data)
    register(main)


_register_subgroups()

if __name__ == "__main__":
    main()
