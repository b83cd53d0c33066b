"""``diffusec eval attacks``: sweep the semantic attacks against the undefended link and DiffuSeC, and plot them."""
from __future__ import annotations

import json
from pathlib import Path

import click

from shared.cli_options import (fail, fail_on, in_process_options, json_option, preset_option, sampler_option,
                                seed_option, show_progress, steps_option, t_d_option, t_plus_option)

from .evaluate import check_eval_args, wireless_module_required

SWEPT_SYSTEMS = ("vit", "plain")


def _float_list(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, ...] | None:
    """``"2/255,4/255,0.1"`` -> floats (eps syntax); None stays None (the preset's default)."""
    if value is None:
        return None
    from shared.attacks.budget import parse_eps

    try:
        values = tuple(parse_eps(part) for part in value.split(",") if part.strip())
    except ValueError as err:
        raise click.BadParameter(str(err), ctx=ctx, param=param) from None
    if not values:
        raise click.BadParameter("give at least one value, comma-separated", ctx=ctx, param=param)
    return values


def _systems(systems: str) -> tuple[str, ...]:
    """``--systems "vit,plain"`` -> ("vit", "plain"); fails on anything but vit and plain."""
    chosen = tuple(s.strip() for s in systems.split(",") if s.strip())
    if not chosen or any(s not in SWEPT_SYSTEMS for s in chosen):
        fail(f"--systems must list vit and/or plain, got {systems!r}")
    return chosen


def _print_sweep(result, preset: str, target: int) -> None:
    """The text output: per system the clean accuracy, the PNR curves, the strength curve."""
    click.echo(f"attack sweep of {preset} on {result.data}: {len(result.runs)} runs in {result.wall_time_s} s")
    labels = result.config["eps_labels"]
    for system in result.config["systems"]:
        curve, strength, multi = result.pnr[system], result.strength[system], result.multi_domain[system]
        click.echo(f"  {system}: clean accuracy {result.baseline[system]}")
        for i, p in enumerate(curve["pnr_db"]):
            click.echo(f"    PNR {p:6.1f} dB  adversarial {curve['adversarial'][i]:.3f}  jamming {curve['jamming'][i]:.3f}"
                       f"  multi-domain {multi['multi_domain'][i]:.3f}")
        click.echo(f"    source only (eps {result.config['source_eps_label']}): {multi['source_only']}")
        for i, _ in enumerate(strength["eps"]):
            click.echo(f"    eps {labels[i]:>8s}  success non-targeted "
                       f"{strength['non_targeted'][i]}  targeted (class {target}) {strength['targeted'][i]}")


@click.command("attacks")
@preset_option()
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
@t_d_option()
@t_plus_option()
@sampler_option("Default ddpm (ddim with --quick).", default=None)
@steps_option()
@seed_option()
@in_process_options()
@json_option("Print the attacks.json object as the last stdout line.")
def eval_attacks(preset, out_dir, n, quick, snr_db, pnr_min, pnr_max, pnr_step, source_kind, eps, eps_list,
                 attack_steps, channel_attack_method, target, adaptive, eot_samples, systems, t_d, t_plus, sampler,
                 steps, seed, image_set, data_root, checkpoints, batch, threads, device, as_json) -> None:
    """Sweep the semantic attacks against the undefended link (vit) and DiffuSeC (plain); plot them.

    \b
    (a) accuracy vs PNR (dB): adversarial wireless attack vs Gaussian jamming of the same power
    (b) multi-domain: source attack of strength --eps plus the wireless attack at each PNR
    (c) attack success rate vs source strength eps: targeted (--target) vs non-targeted

    Writes OUT/attacks.json and OUT/{pnr,multi_domain,strength}.png.
    """
    from dataclasses import replace

    from shared.checkpoints import CheckpointError
    from shared.data import DataNotFoundError, load_eval_data
    from shared.pipeline import Pipeline
    from shared.presets import get_preset
    from shared.report import attack_sweep as sw
    from shared.report.outputs import write_attack_sweep

    check_eval_args(threads, snr_db, t_d, t_plus)
    chosen = _systems(systems)
    with fail_on(ValueError):
        config = sw.sweep_config(
            get_preset(preset).dataset, eps, eps_list, systems=chosen, snr_db=snr_db,
            pnr_db=sw.pnr_grid(pnr_min, pnr_max, pnr_step), source_kind=source_kind, attack_steps=attack_steps,
            channel_method=channel_attack_method, target=target, adaptive=adaptive, eot_samples=eot_samples, t_d=t_d,
            t_plus=t_plus, sampler=sampler or "ddpm", sampler_steps=steps, seed=seed, batch=batch)
    if quick:
        config = sw.quick(config)
        if sampler is not None:   # an explicit --sampler wins over --quick's ddim
            config = replace(config, sampler=sampler, sampler_steps=steps)
    parts = ("codec", "denoiser", "classifier") if "plain" in chosen else ("codec", "classifier")
    with fail_on(CheckpointError, DataNotFoundError, FileNotFoundError):
        pipeline = Pipeline.load(preset, checkpoints, parts, device)
        data = load_eval_data(preset, data_root, image_set, n or (16 if quick else 100), seed)
    if target >= pipeline.preset.num_classes:
        fail(f"--target {target} out of range: preset {preset} has {pipeline.preset.num_classes} classes")
    with wireless_module_required():
        result = sw.run_sweep(pipeline, data, config, progress=show_progress(as_json))
    payload = write_attack_sweep(result, out_dir)
    if as_json:
        click.echo(json.dumps(payload))
        return
    _print_sweep(result, preset, target)
    click.echo(f"  wrote {Path(out_dir) / 'attacks.json'} and {', '.join(payload['plots'].values())}")
