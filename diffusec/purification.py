"""``diffusec eval purification``: how much of a PGD perturbation survives purification, per t."""
from __future__ import annotations

import json

import click

from shared.cli_options import (fail_on, in_process_options, json_option, preset_option, sampler_option, seed_option,
                                show_progress, steps_option)
from shared.presets import NUM_TIMESTEPS

from .evaluate import check_eval_args


def _int_list(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    """``"20,40,60"`` -> [20, 40, 60], each in 1..T."""
    try:
        values = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}", ctx=ctx, param=param) from None
    if not values or any(not 1 <= v <= NUM_TIMESTEPS for v in values):
        raise click.BadParameter(f"give one or more timesteps in 1..{NUM_TIMESTEPS}, got {value!r}", ctx=ctx, param=param)
    return values


def _print_report(report, preset: str, where: str, shown_sampler: str, attack, attack_steps: int) -> None:
    """The text output: the classifier alone, then one row per t."""
    click.echo(f"purification of {preset} on {report.data}, {where}, sampler {shown_sampler}, PGD "
               f"{attack.to_dict()['eps_label']} x{attack_steps}")
    click.echo(f"  classifier alone: clean {report.classifier_clean_accuracy}  attacked {report.classifier_attacked_accuracy}")
    click.echo(f"  {'t':>5s} {'clean':>7s} {'attacked':>9s} {'gap':>7s} {'survival':>9s} {'SSIM clean':>11s} {'SSIM att.':>10s}")
    for p in report.points:
        survival = "-" if p.survival is None else f"{p.survival:.3f}"   # None: nothing was perturbed (eps 0)
        click.echo(f"  {p.t:5d} {p.clean_accuracy:7.3f} {p.attacked_accuracy:9.3f} {p.gap:+7.3f} {survival:>9s} "
                   f"{p.ssim_clean:11.3f} {p.ssim_attacked:10.3f}")


@click.command("purification")
@preset_option()
@click.option("--t", "ts", default="20,40,60,100", show_default=True, callback=_int_list,
              help="Diffusion = purification steps to measure, comma-separated.")
@click.option("--link", is_flag=True, help="Send through the codec and AWGN at --snr-db (default: no codec).")
@click.option("--snr-db", type=float, default=15.0, show_default=True, help="AWGN SNR with --link (dB).")
@sampler_option("The purifier's sampler (ddpm is what the receiver and `diffusec eval` default to).")
@steps_option()
@click.option("--eta", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="--sampler ddim: 0 deterministic, 1 fresh noise at every step (a stochastic strided sampler).")
@click.option("--n", "n", type=click.IntRange(min=1), default=200, show_default=True, help="Number of test images.")
@click.option("--eps", default="8/255", show_default=True, help="PGD l_inf budget, [0, 1] pixel units.")
@click.option("--attack-steps", type=click.IntRange(min=1), default=10, show_default=True)
@seed_option("Seeds the image choice, the attack and the noise.")
@in_process_options(batch=100)
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write accuracy against t as a PNG here.")
@json_option()
def eval_purification(preset, ts, link, snr_db, sampler, steps, eta, n, eps, attack_steps, seed, image_set, data_root,
                      checkpoints, batch, threads, device, plot, as_json) -> None:
    """How much of a PGD perturbation survives purification, per t.

    Each test image goes through twice, clean and attacked (PGD on the classifier alone, the paper's
    protocol), with the same diffusion, channel and purifier noise. Per t: clean- and
    attacked-purified accuracy, their gap, the survival ratio ||P(x') - P(x)|| / ||x' - x|| (0: the
    perturbation is washed out, 1: it passes at full size) and SSIM to the clean original.
    """
    from shared.attacks.budget import parse_eps
    from shared.attacks.source import SourceAttack
    from shared.checkpoints import CheckpointError
    from shared.data import DataNotFoundError, load_eval_data
    from shared.pipeline import Pipeline
    from shared.purification import measure_purification, plot_purification

    check_eval_args(threads, snr_db, max(ts), 0)
    with fail_on(ValueError):
        attack = SourceAttack("pgd", parse_eps(eps), attack_steps)
    parts = ("codec", "denoiser", "classifier") if link else ("denoiser", "classifier")
    with fail_on(CheckpointError, DataNotFoundError, FileNotFoundError):
        pipeline = Pipeline.load(preset, checkpoints, parts, device)
        data = load_eval_data(preset, data_root, image_set, n, seed)
    report = measure_purification(pipeline, data, ts, attack, sampler=sampler, steps=steps, eta=eta,
                                  link_snr_db=snr_db if link else None, seed=seed, batch=batch,
                                  progress=show_progress(as_json))
    payload = report.to_dict()
    if plot:
        payload["plot"] = plot_purification(report, plot)
    if as_json:
        click.echo(json.dumps(payload))
        return
    where = f"link at {snr_db:g} dB" if link else "no codec"
    shown_sampler = f"ddim ({steps} calls, eta {eta:g})" if sampler == "ddim" else "ddpm"
    _print_report(report, preset, where, shown_sampler, attack, attack_steps)
    click.echo(f"  {report.wall_time_s} s" + (f"; plot {payload['plot']}" if plot else ""))
