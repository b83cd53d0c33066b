"""``diffusec``: train the models, evaluate the pipeline in process, manage data."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from .attacks.options import source_attack_options
from .devices import DEVICE
from .presets import DEFAULT_PRESET, NUM_TIMESTEPS, PRESETS

PRESET_OPTION = click.option("--preset", type=click.Choice(list(PRESETS)), default=DEFAULT_PRESET,
                             show_default=True, help="Model/training preset (see shared/presets.py).")
DATA_OPTION = click.option("--data-root", type=click.Path(file_okay=False, exists=True), default=None,
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


class _TrainCommand(click.Command):
    """`diffusec train PHASE`, and `diffusec train agent ...` handed to the agent's own command and options."""

    def make_context(self, info_name, args, parent=None, **extra):
        if args[:1] == ["agent"]:
            from .agent.cli import train_agent_command

            return train_agent_command.make_context(f"{info_name} agent", args[1:], parent=parent, **extra)
        return super().make_context(info_name, args, parent=parent, **extra)


@main.command(cls=_TrainCommand)
@click.argument("phase", type=click.Choice(PHASES))
@PRESET_OPTION
@DATA_OPTION
@CKPT_OPTION
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Stop each phase after this many steps (smoke tests).")
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Train the phase for this many epochs instead of the preset's (one phase, not `all`; the "
                   "manifest's preset_config records the value used). cifar10 defaults: semantic 1, jsc 0.5, "
                   "joint 2, denoiser 2, classifier 18, retrain 6, --adversarial 3.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch threads (default: all cores, split across ranks).")
@click.option("--adversarial", is_flag=True,
              help="With `classifier`: PGD adversarial training (Madry et al.) into a separate classifier_at.pt "
                   "for the jpeg-ldpc-at baseline; classifier.pt is left alone. Settings: the preset's "
                   "TrainConfig.adversarial_* fields; " + "; ".join(
                       f"{name}: {p.train.describe_adversarial()}" for name, p in PRESETS.items()
                       if name in ("cifar10", "paper-cifar10")) + ".")
def train(phase: str, preset: str, data_root: str | None, checkpoints: str | None, seed: int,
          max_steps: int | None, epochs: float | None, threads: int | None, adversarial: bool) -> None:
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
    Scale out with `torchrun --nproc-per-node N -m shared.cli train ...` (gloo on CPU, nccl on GPU).
    """
    import torch

    from .checkpoints import CheckpointError, default_checkpoint_dir
    from .data import DataNotFoundError
    from .presets import get_preset
    from .training import run_phase
    from .training.common import PhaseContext
    from .training.distributed import init_distributed, shutdown

    if adversarial and phase != "classifier":
        _fail("--adversarial goes with `diffusec train classifier` only")
    if epochs is not None and phase == "all":
        _fail("--epochs sets one phase's length: name the phase (e.g. `diffusec train denoiser --epochs 6`)")
    if threads:
        torch.set_num_threads(threads)
    ctx = init_distributed()
    out_dir = Path(checkpoints) if checkpoints else default_checkpoint_dir(preset)
    phases = [p for p in PHASES if p != "all"] if phase == "all" else [phase]
    phases = ["classifier_at"] if adversarial else phases
    chosen = get_preset(preset)
    if epochs is not None:
        chosen = chosen.with_epochs(phases[0], epochs)
    pc = PhaseContext(chosen, out_dir, ctx, seed, data_root, max_steps)
    try:
        for name in phases:
            run_phase(name, pc)
    except (DataNotFoundError, CheckpointError) as err:  # e.g. `train denoiser` before the codec exists
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


def _check_eval_args(threads: int | None, snr_db: float, t_d: int, t_plus: int) -> None:
    """Set torch's threads; fail clearly on a non-finite SNR or t_P beyond T."""
    import math

    import torch

    if threads:
        torch.set_num_threads(threads)
    if not math.isfinite(snr_db):
        _fail(f"--snr-db must be a finite number of dB, got {snr_db}")
    if t_d + t_plus > NUM_TIMESTEPS:
        _fail(f"t_P = t_D + t_plus = {t_d + t_plus} exceeds T = {NUM_TIMESTEPS} diffusion steps")


@main.group("eval", invoke_without_command=True)
@PRESET_OPTION
@click.option("--system", type=click.Choice(["classifier", "vit", "plain", "diffusec", "table", "jpeg-ldpc",
                                            "jpeg-ldpc-at"]),
              default="plain", show_default=True,
              help="classifier: classifier alone on clean images; vit: the link without diffusion "
                   "(the paper's ViT-based); plain: DiffuSeC with fixed symmetric steps; diffusec: DiffuSeC with "
                   "the DDPG agent (VI-C: random initial t_D/t_plus per batch, 3 policy steps at the SNR, accuracy "
                   "averaged over them; needs `diffusec train agent`); table: the same with the grid oracle; "
                   "jpeg-ldpc: the conventional baseline, JPEG + 802.16e LDPC + QAM on the same AWGN channel and "
                   "number of channel uses, then the same classifier (docs/baselines.md); jpeg-ldpc-at: the same "
                   "with the PGD-trained classifier_at.pt (`diffusec train classifier --adversarial`).")
@click.option("--link-mode", default="adaptive", show_default=True, callback=lambda c, p, v: _check_link_mode(c, p, v),
              help="jpeg-ldpc(-at) only: 'adaptive' (the highest-throughput mode whose measured frame error rate at the "
                   "SNR is below 10%) or a fixed MODULATION-RATE, modulation qpsk|16qam|64qam, rate 1/2|2/3|3/4|5/6, "
                   "e.g. 16qam-3/4.")
@click.option("--snr-db", type=float, default=15.0, show_default=True, help="AWGN channel SNR in dB.")
@click.option("--n", "n", type=click.IntRange(min=1), default=1000, show_default=True, help="Number of test images.")
@click.option("--t-d", "t_d", type=click.IntRange(0, NUM_TIMESTEPS), default=20, show_default=True,
              help="Diffusing timesteps t_D at the sender (plain).")
@click.option("--t-plus", "t_plus", type=click.IntRange(0, NUM_TIMESTEPS), default=0, show_default=True,
              help="Plus steps: the receiver denoises from t_P = t_D + t_plus (plain).")
@click.option("--sampler", type=click.Choice(["ddpm", "ddim"]), default="ddpm", show_default=True,
              help="ddpm: the full reverse chain t_P -> 0 (t_P network calls); ddim: strided, --steps calls.")
@click.option("--steps", type=click.IntRange(min=1), default=5, show_default=True, help="Network calls for --sampler ddim.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the image choice and all noise.")
@click.option("--noise-seed", type=int, default=None,
              help="Seeds the noise (diffusion, channel, purification, attack starts) apart from the image choice "
                   "(default: --seed), to see how much a figure moves with the noise alone on the same images.")
@click.option("--data", "source", type=click.Choice(["auto", "test", "sample"]), default="auto", show_default=True,
              help="test: the preset's test split (error if absent); sample: the embedded sample; "
                   "auto: test split if found, else the embedded sample.")
@DATA_OPTION
@CKPT_OPTION
@click.option("--batch", type=click.IntRange(min=1), default=250, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch threads (default: all cores).")
@click.option("--device", type=DEVICE, default="cpu", show_default=True, help="torch device for the models, e.g. cuda.")
@click.option("--grid", type=click.Path(dir_okay=False), default=None,
              help="Also write a PNG of the first 10 images: original and what the receiver ends with.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object as the last stdout line.")
@source_attack_options
@click.option("--channel-attack", type=click.Choice(["none", "jamming", "adversarial"]), default="none",
              show_default=True, help="Perturb the received symbols (vit, plain): Gaussian jamming, or an "
                                      "adversarial perturbation through the receiver's decoder and classifier.")
@click.option("--pnr-db", type=float, default=None,
              help="Channel attack power: perturbation-to-noise ratio in dB (needed with --channel-attack).")
@click.option("--channel-attack-method", type=click.Choice(["fgm", "pgd"]), default="fgm", show_default=True,
              help="Adversarial channel attack: one fast gradient step (fgm, the attack paper's) or PGD "
                   "with --attack-steps.")
@click.pass_context
def eval_command(ctx, preset, system, link_mode, snr_db, n, t_d, t_plus, sampler, steps, seed, noise_seed, source, data_root,
                 checkpoints, batch, threads, device, grid, as_json, source_attack, eps, attack_steps, step_size, target,
                 adaptive, eot_samples, channel_attack, pnr_db, channel_attack_method) -> None:
    """Measure accuracy and SSIM of SYSTEM on the test split, in one process.

    SSIM is between each original test image and what the receiver ends with (after purification
    for plain), averaged over images. Accuracy and SSIM are in [0, 1].

    Under attack (--source-attack, --channel-attack) the JSON adds source_attack, channel_attack
    (the parameters, with the gradient path) and attack_success_rate (non-targeted: fraction
    misclassified; targeted: of the images not of class --target, the fraction classified as it).
    SSIM still compares against the clean originals.

    jpeg-ldpc adds decode_failure_rate (images the receiver did not get: it then has a mid-grey
    image), link_mode and link (policy, frame plan, failure counts, mean JPEG quality). It takes
    non-adaptive source attacks; channel attacks and --adaptive are refused.

    `diffusec eval attacks` sweeps the attacks and plots them (see `diffusec eval attacks --help`).
    """
    if ctx.invoked_subcommand is not None:
        return
    import torch

    noise = seed if noise_seed is None else noise_seed

    from .attacks.chain import ChannelAttack, attacked_run, check_digital_attacks
    from .attacks.options import build_source_attack
    from .checkpoints import CheckpointError
    from .data import DataNotFoundError
    from .evaluate import attack_target, evaluate
    from .pipeline import DIGITAL_SYSTEMS, Pipeline, classifier_kind_for

    _check_eval_args(threads, snr_db, t_d, t_plus)
    try:
        attack = build_source_attack(source_attack, eps, attack_steps, step_size, target, adaptive, eot_samples)
        wireless = None
        if channel_attack != "none":
            if system == "classifier":
                raise ValueError("--channel-attack needs a link: use --system vit or plain")
            if pnr_db is None:
                raise ValueError("--channel-attack needs --pnr-db (perturbation-to-noise ratio, dB)")
            wireless = ChannelAttack(channel_attack, pnr_db, method=channel_attack_method, steps=attack_steps,
                                     target=target if channel_attack == "adversarial" else None, adaptive=adaptive)
        attack_target(attack, wireless)
        if system in DIGITAL_SYSTEMS:
            check_digital_attacks(system, attack, wireless)
        elif link_mode != "adaptive":
            raise ValueError("--link-mode applies to --system jpeg-ldpc and jpeg-ldpc-at only")
    except ValueError as err:
        _fail(str(err))
    if target is not None and attack is None and (wireless is None or wireless.kind != "adversarial"):
        _fail("--target needs --source-attack fgsm|pgd or --channel-attack adversarial")
    parts = {"classifier": ("classifier",), "vit": ("codec", "classifier"),
             **dict.fromkeys(DIGITAL_SYSTEMS, ("classifier",))}.get(system, ("codec", "denoiser", "classifier"))
    try:
        pipeline = Pipeline.load(preset, checkpoints, parts, device, classifier_kind=classifier_kind_for(system))
        pipeline.link_mode = link_mode
        data = load_eval_data(preset, data_root, source, n, seed)
    except (CheckpointError, DataNotFoundError, FileNotFoundError) as err:
        _fail(str(err))
    if target is not None and target >= pipeline.preset.num_classes:
        _fail(f"--target {target} out of range: preset {preset} has {pipeline.preset.num_classes} classes (0..."
              f"{pipeline.preset.num_classes - 1})")
    if system in ("diffusec", "table"):
        from .agent.cli import run_adaptive_eval

        try:
            payload = run_adaptive_eval(system, preset, checkpoints, pipeline, data, snr_db, noise, batch, sampler,
                                        steps, not as_json and sys.stderr.isatty(), attack, wireless)
        except (CheckpointError, FileNotFoundError) as err:
            _fail(str(err))
        if as_json:
            click.echo(json.dumps(payload))
            return
        click.echo(f"{system} on {payload['data']}")
        for key in ("accuracy", "ssim", "snr_db", "policy", "policy_steps", "mean_t_d", "mean_t_plus", "sampler",
                    "n", "wall_time_s", "attack_success_rate"):
            if payload.get(key) is not None:
                click.echo(f"  {key:16s} {payload[key]}")
        click.echo(f"  {'visited':16s} {payload['visited'][:4]}{' ...' if len(payload['visited']) > 4 else ''}")
        return
    try:
        result = evaluate(pipeline, data, system, snr_db, t_d, t_plus, noise, batch, sampler, steps,
                          progress=not as_json and sys.stderr.isatty(), source_attack=attack, channel_attack=wireless)
    except RuntimeError as err:
        if "wireless.py" not in str(err):
            raise
        _fail(str(err))
    payload = result.to_dict()
    payload["image_seed"] = seed  # "seed" is the noise seed (the same unless --noise-seed)
    if grid:
        from .imaging import save_grid

        shown = data.as_float(slice(0, 10))
        received, _ = attacked_run(pipeline, system, shown, data.labels[:10], snr_db, t_d, t_plus, sampler, steps,
                                   torch.Generator().manual_seed(noise), source=attack, channel=wireless)
        label = {"classifier": "input", "vit": f"vit {snr_db:g} dB", "plain": f"plain {snr_db:g} dB t={t_d}+{t_plus}",
                 **{s: f"{s} {snr_db:g} dB {payload['link_mode']}" for s in DIGITAL_SYSTEMS}}[system]
        if attack is not None or wireless is not None:
            label += " attacked"
        payload["grid"] = str(save_grid([("original", shown), (label, received)], grid))
    if as_json:
        click.echo(json.dumps(payload))
        return
    click.echo(f"{system} on {result.data}")
    for key in ("accuracy", "ssim", "snr_db", "t_d", "t_plus", "sampler", "sampler_steps", "link_mode",
                "decode_failure_rate", "bandwidth_ratio", "channel_symbols", "n", "wall_time_s", "images_per_s", "grid",
                "attack_success_rate"):
        if payload.get(key) is not None:
            click.echo(f"  {key:16s} {payload[key]}")
    for key in ("source_attack", "channel_attack"):
        if payload.get(key) is not None:
            shown_attack = {k: v for k, v in payload[key].items() if v is not None}
            click.echo(f"  {key:16s} {json.dumps(shown_attack)}")


def _check_link_mode(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """``--link-mode``: "adaptive" or a mode name such as 16qam-3/4 (BadParameter listing the modes otherwise)."""
    if value == "adaptive":
        return value
    from .baselines.digital_link import LinkMode

    try:
        return LinkMode.parse(value).name
    except ValueError as err:
        raise click.BadParameter(f"{err}; or adaptive", ctx=ctx, param=param) from None


def _float_list(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, ...] | None:
    """``"2/255,4/255,0.1"`` -> floats (eps syntax); None stays None (the preset's default)."""
    if value is None:
        return None
    from .attacks.budget import parse_eps

    try:
        values = tuple(parse_eps(part) for part in value.split(",") if part.strip())
    except ValueError as err:
        raise click.BadParameter(str(err), ctx=ctx, param=param) from None
    if not values:
        raise click.BadParameter("give at least one value, comma-separated", ctx=ctx, param=param)
    return values


@eval_command.command("attacks")
@PRESET_OPTION
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Folder for attacks.json and the plots pnr.png, multi_domain.png, strength.png.")
@click.option("--n", "n", type=click.IntRange(min=1), default=None,
              help="Test images per point (default 100; 16 with --quick).")
@click.option("--quick", is_flag=True,
              help="Smoke-sized sweep: PNR every 10 dB, the two largest strengths, at most 3 attack steps, "
                   "the 5-call DDIM purifier, 2 EOT draws.")
@click.option("--snr-db", type=float, default=5.0, show_default=True, help="AWGN channel SNR in dB (the attack paper's 5 dB).")
@click.option("--pnr-min", type=float, default=-20.0, show_default=True, help="Lowest PNR of the sweep (dB).")
@click.option("--pnr-max", type=float, default=0.0, show_default=True, help="Highest PNR of the sweep (dB).")
@click.option("--pnr-step", type=click.FloatRange(min=0, min_open=True), default=5.0, show_default=True, help="PNR step (dB).")
@click.option("--source-attack", "source_kind", type=click.Choice(["fgsm", "pgd"]), default="pgd", show_default=True,
              help="The source attack of the multi-domain and strength curves.")
@click.option("--eps", default=None, callback=lambda c, p, v: _float_list(c, p, v)[0] if v else None,
              help="Source strength of the multi-domain attack, [0, 1] pixel units (default 0.1 for mnist/fmnist as "
                   "in the attack paper's Fig. 6, 8/255 for cifar10).")
@click.option("--eps-list", default=None, callback=_float_list,
              help="Strengths of the success-vs-strength curve, comma-separated, e.g. 2/255,4/255,8/255.")
@click.option("--attack-steps", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--channel-attack-method", type=click.Choice(["fgm", "pgd"]), default="fgm", show_default=True)
@click.option("--target", type=click.IntRange(min=0), default=0, show_default=True,
              help="Class of the targeted strength curve.")
@click.option("--adaptive", is_flag=True, help="Attacks differentiate through the whole chain (see `diffusec eval --help`).")
@click.option("--eot-samples", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--systems", default="vit,plain", show_default=True, help="Comma-separated systems to attack.")
@click.option("--t-d", "t_d", type=click.IntRange(0, NUM_TIMESTEPS), default=20, show_default=True)
@click.option("--t-plus", "t_plus", type=click.IntRange(0, NUM_TIMESTEPS), default=0, show_default=True)
@click.option("--sampler", type=click.Choice(["ddpm", "ddim"]), default=None, help="Default ddpm (ddim with --quick).")
@click.option("--steps", type=click.IntRange(min=1), default=5, show_default=True, help="Network calls for --sampler ddim.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--data", "source", type=click.Choice(["auto", "test", "sample"]), default="auto", show_default=True)
@DATA_OPTION
@CKPT_OPTION
@click.option("--batch", type=click.IntRange(min=1), default=250, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch threads (default: all cores).")
@click.option("--device", type=DEVICE, default="cpu", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the attacks.json object as the last stdout line.")
def eval_attacks(preset, out_dir, n, quick, snr_db, pnr_min, pnr_max, pnr_step, source_kind, eps, eps_list,
                 attack_steps, channel_attack_method, target, adaptive, eot_samples, systems, t_d, t_plus, sampler,
                 steps, seed, source, data_root, checkpoints, batch, threads, device, as_json) -> None:
    """Sweep the semantic attacks against the undefended link (vit) and DiffuSeC (plain); plot them.

    \b
    (a) accuracy vs PNR (dB): adversarial wireless attack vs Gaussian jamming of the same power
    (b) multi-domain: source attack of strength --eps plus the wireless attack at each PNR
    (c) attack success rate vs source strength eps: targeted (--target) vs non-targeted

    Writes OUT/attacks.json and OUT/{pnr,multi_domain,strength}.png.
    """
    from dataclasses import replace

    from .attacks import sweep as sw
    from .attacks.plots import plot_sweep
    from .checkpoints import CheckpointError
    from .data import DataNotFoundError
    from .pipeline import Pipeline
    from .presets import get_preset

    _check_eval_args(threads, snr_db, t_d, t_plus)
    chosen = tuple(s.strip() for s in systems.split(",") if s.strip())
    if not chosen or any(s not in ("vit", "plain") for s in chosen):
        _fail(f"--systems must list vit and/or plain, got {systems!r}")
    dataset = get_preset(preset).dataset
    try:
        config = sw.SweepConfig(
            systems=chosen, snr_db=snr_db, pnr_db=sw.pnr_grid(pnr_min, pnr_max, pnr_step), source_kind=source_kind,
            source_eps=eps if eps is not None else sw.DEFAULT_SOURCE_EPS.get(dataset, 8 / 255),
            eps_list=eps_list or sw.DEFAULT_EPS_LIST.get(dataset, sw.DEFAULT_EPS_LIST["cifar10"]),
            attack_steps=attack_steps, channel_method=channel_attack_method, target=target, adaptive=adaptive,
            eot_samples=eot_samples, t_d=t_d, t_plus=t_plus, sampler=sampler or "ddpm", sampler_steps=steps,
            seed=seed, batch=batch)
    except ValueError as err:
        _fail(str(err))
    if quick:
        config = sw.quick(config)
        if sampler is not None:
            config = replace(config, sampler=sampler, sampler_steps=steps)
    parts = ("codec", "denoiser", "classifier") if "plain" in chosen else ("codec", "classifier")
    try:
        pipeline = Pipeline.load(preset, checkpoints, parts, device)
        data = load_eval_data(preset, data_root, source, n or (16 if quick else 100), seed)
    except (CheckpointError, DataNotFoundError, FileNotFoundError) as err:
        _fail(str(err))
    if target >= pipeline.preset.num_classes:
        _fail(f"--target {target} out of range: preset {preset} has {pipeline.preset.num_classes} classes")
    progress = not as_json and sys.stderr.isatty() and not os.environ.get("DIFFUSEC_NO_PROGRESS")
    try:
        result = sw.run_sweep(pipeline, data, config, progress=progress)
    except RuntimeError as err:
        if "wireless.py" not in str(err):
            raise
        _fail(str(err))
    out = Path(out_dir)
    payload = result.to_dict()
    payload["plots"] = plot_sweep(result, out)
    (out / "attacks.json").write_text(json.dumps(payload, indent=1) + "\n")
    if as_json:
        click.echo(json.dumps(payload))
        return
    click.echo(f"attack sweep of {preset} on {result.data}: {len(result.runs)} runs in {result.wall_time_s} s")
    for system in config.systems:
        curve, strength = result.pnr[system], result.strength[system]
        click.echo(f"  {system}: clean accuracy {result.baseline[system]}")
        for i, p in enumerate(curve["pnr_db"]):
            click.echo(f"    PNR {p:6.1f} dB  adversarial {curve['adversarial'][i]:.3f}  jamming {curve['jamming'][i]:.3f}"
                       f"  multi-domain {result.multi_domain[system]['multi_domain'][i]:.3f}")
        click.echo(f"    source only (eps {result.config['source_eps_label']}): "
                   f"{result.multi_domain[system]['source_only']}")
        for i, e in enumerate(strength["eps"]):
            click.echo(f"    eps {result.config['eps_labels'][i]:>8s}  success non-targeted "
                       f"{strength['non_targeted'][i]}  targeted (class {target}) {strength['targeted'][i]}")
    click.echo(f"  wrote {out / 'attacks.json'} and {', '.join(payload['plots'].values())}")


def _int_list(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    """``"20,40,60"`` -> [20, 40, 60], each in 1..T."""
    try:
        values = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}", ctx=ctx, param=param) from None
    if not values or any(not 1 <= v <= NUM_TIMESTEPS for v in values):
        raise click.BadParameter(f"give one or more timesteps in 1..{NUM_TIMESTEPS}, got {value!r}", ctx=ctx, param=param)
    return values


@eval_command.command("purification")
@PRESET_OPTION
@click.option("--t", "ts", default="20,40,60,100", show_default=True, callback=_int_list,
              help="Diffusion = purification steps to measure, comma-separated.")
@click.option("--link", is_flag=True, help="Send through the codec and AWGN at --snr-db (default: no codec).")
@click.option("--snr-db", type=float, default=15.0, show_default=True, help="AWGN SNR with --link (dB).")
@click.option("--sampler", type=click.Choice(["ddpm", "ddim"]), default="ddpm", show_default=True,
              help="The purifier's sampler (ddpm is what the receiver and `diffusec eval` default to).")
@click.option("--steps", type=click.IntRange(min=1), default=5, show_default=True, help="Network calls for --sampler ddim.")
@click.option("--eta", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="--sampler ddim: 0 deterministic, 1 fresh noise at every step (a stochastic strided sampler).")
@click.option("--n", "n", type=click.IntRange(min=1), default=200, show_default=True, help="Number of test images.")
@click.option("--eps", default="8/255", show_default=True, help="PGD l_inf budget, [0, 1] pixel units.")
@click.option("--attack-steps", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the image choice, the attack and the noise.")
@click.option("--data", "source", type=click.Choice(["auto", "test", "sample"]), default="auto", show_default=True)
@DATA_OPTION
@CKPT_OPTION
@click.option("--batch", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch threads (default: all cores).")
@click.option("--device", type=DEVICE, default="cpu", show_default=True)
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write accuracy against t as a PNG here.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object as the last stdout line.")
def eval_purification(preset, ts, link, snr_db, sampler, steps, eta, n, eps, attack_steps, seed, source, data_root,
                      checkpoints, batch, threads, device, plot, as_json) -> None:
    """How much of a PGD perturbation survives purification, per t.

    Each test image goes through twice, clean and attacked (PGD on the classifier alone, the paper's
    protocol), with the same diffusion, channel and purifier noise. Per t: clean- and
    attacked-purified accuracy, their gap, the survival ratio ||P(x') - P(x)|| / ||x' - x|| (0: the
    perturbation is washed out, 1: it passes at full size) and SSIM to the clean original.
    """
    from .attacks.budget import parse_eps
    from .attacks.source import SourceAttack
    from .checkpoints import CheckpointError
    from .data import DataNotFoundError
    from .pipeline import Pipeline
    from .purification import measure_purification, plot_purification

    _check_eval_args(threads, snr_db, max(ts), 0)
    try:
        attack = SourceAttack("pgd", parse_eps(eps), attack_steps)
    except ValueError as err:
        _fail(str(err))
    parts = ("codec", "denoiser", "classifier") if link else ("denoiser", "classifier")
    try:
        pipeline = Pipeline.load(preset, checkpoints, parts, device)
        data = load_eval_data(preset, data_root, source, n, seed)
    except (CheckpointError, DataNotFoundError, FileNotFoundError) as err:
        _fail(str(err))
    progress = not as_json and sys.stderr.isatty() and not os.environ.get("DIFFUSEC_NO_PROGRESS")
    report = measure_purification(pipeline, data, ts, attack, sampler=sampler, steps=steps, eta=eta,
                                  link_snr_db=snr_db if link else None, seed=seed, batch=batch, progress=progress)
    payload = report.to_dict()
    if plot:
        payload["plot"] = plot_purification(report, plot)
    if as_json:
        click.echo(json.dumps(payload))
        return
    where = f"link at {snr_db:g} dB" if link else "no codec"
    shown_sampler = f"ddim ({steps} calls, eta {eta:g})" if sampler == "ddim" else "ddpm"
    click.echo(f"purification of {preset} on {report.data}, {where}, sampler {shown_sampler}, PGD {attack.to_dict()['eps_label']}"
               f" x{attack_steps}")
    click.echo(f"  classifier alone: clean {report.classifier_clean_accuracy}  attacked {report.classifier_attacked_accuracy}")
    click.echo(f"  {'t':>5s} {'clean':>7s} {'attacked':>9s} {'gap':>7s} {'survival':>9s} {'SSIM clean':>11s} {'SSIM att.':>10s}")
    for p in report.points:
        survival = "-" if p.survival is None else f"{p.survival:.3f}"   # None: nothing was perturbed (eps 0)
        click.echo(f"  {p.t:5d} {p.clean_accuracy:7.3f} {p.attacked_accuracy:9.3f} {p.gap:+7.3f} {survival:>9s} "
                   f"{p.ssim_clean:11.3f} {p.ssim_attacked:10.3f}")
    click.echo(f"  {report.wall_time_s} s" + (f"; plot {payload['plot']}" if plot else ""))


def _register_subgroups() -> None:
    from .data.cli import data
    from link.cli import register  # the gRPC link commands (up, demo, bench, health) live with the link
    main.add_command(data)
    register(main)
    from .agent.cli import eval_adaptation_command
    eval_command.add_command(eval_adaptation_command)
    from .report.cli import report_command
    main.add_command(report_command)


_register_subgroups()

if __name__ == "__main__":
    main()
