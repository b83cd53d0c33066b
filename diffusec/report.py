"""``diffusec report``: one command for the reproduction report (results.json, results.md, PNGs)."""
from __future__ import annotations

import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import click

from shared.cli_options import (COMMAND_CONTEXT, checkpoints_option, comma_separated, data_root_option,
                                device_option, fail_on, image_set_option, json_option, preset_option, sampler_option,
                                seed_option, set_threads, show_progress, steps_option, threads_option)
from shared.report.sweep import DEFAULT_SYSTEMS, SNRS_DB, SYSTEMS, ReportConfig, quick as quick_config


def _config(quick: bool, n: int | None, snrs: tuple[float, ...], **settings) -> ReportConfig:
    """The run's ReportConfig; --quick shrinks it, but an explicit --n or SNR list wins over its sizes."""
    config = ReportConfig(n=n or 1000, snrs_db=snrs, **settings)
    if not quick:
        return config
    config = quick_config(config)
    config = replace(config, n=n) if n else config
    ctx = click.get_current_context()
    given = {field: value for param, field, value in (("snrs", "snrs_db", snrs),
                                                      ("adaptive_snrs", "adaptive_snrs_db", settings["adaptive_snrs_db"]),
                                                      ("heldout_snrs", "heldout_snrs_db", settings["heldout_snrs_db"]))
             if ctx.get_parameter_source(param) != click.core.ParameterSource.DEFAULT}
    return replace(config, **given)   # an explicit --snr, --adaptive-snr or --heldout-snr wins over --quick's


def _snrs_or_none(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, ...]:
    """``"-3,3,15"`` -> (-3.0, 3.0, 15.0); ``"none"`` -> () (the column is skipped)."""
    if value.strip().lower() == "none":
        return ()
    return comma_separated(float, "SNRs in dB, or none")(ctx, param, value)


def _command_line(preset: str, out_dir: str, quick: bool, n: int | None) -> str:
    """The command that made the report, for results.md: as typed, or its gist when called another way."""
    if sys.argv[1:2] == ["report"]:
        return "diffusec " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    return (f"diffusec report --preset {preset} --out {out_dir}" + (" --quick" if quick else "")
            + (f" --n {n}" if n else ""))


@click.command("report", context_settings=COMMAND_CONTEXT)
@preset_option()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Folder for results.json, results.md and the results-*.png figures.")
@click.option("--n", type=click.IntRange(min=1), default=None, help="Test images per cell (default 1000; 24 with --quick).")
@click.option("--quick", is_flag=True, help="Smoke-sized: 24 images, SNRs -6/3/12 dB, PGD 2 steps, a 2-call purifier.")
@click.option("--systems", default=",".join(DEFAULT_SYSTEMS), show_default=True, callback=comma_separated(str),
              help="Comma-separated systems: " + ", ".join(SYSTEMS) + " (table: the agent's grid oracle, the best "
                   "measured (t_D, t_plus) per SNR, to compare the actor with; not run unless named).")
@click.option("--snr", "snrs", default=",".join(f"{s:g}" for s in SNRS_DB), show_default=True,
              callback=comma_separated(float), help="Channel SNRs (dB).")
@sampler_option("Purifier of plain and diffusec: ddpm (the paper's chain and the receiver's, t_P U-Net calls; the "
                "shipped agent's grid was measured with it) or ddim (strided, --steps calls: about 4x faster at "
                "t_P = 20, purifies less).", default="ddpm")
@steps_option("U-Net calls of the ddim purifier.")
@click.option("--attack-steps", type=click.IntRange(min=1), default=10, show_default=True, help="PGD steps (paper: 10).")
@click.option("--channel", type=click.Choice(["awgn", "rayleigh", "rician"]), default="awgn", show_default=True,
              help="Every system's link: AWGN, or block fading before it (perfect CSI, zf; docs/fading.md).")
@click.option("--k-db", type=float, default=None, help="rician: K factor (dB).")
@click.option("--fading-block", type=click.IntRange(min=1), default=None,
              help="Fading: complex symbols per coefficient (default: one per image).")
@click.option("--adaptive-snr", "adaptive_snrs", default="-3,3,15", show_default=True, callback=_snrs_or_none,
              help="SNRs (dB) of the adaptive column: PGD with EOT through the whole chain, for plain and diffusec, "
                   "on the first 200 images (the costliest cells: minutes each). 'none' skips it.")
@click.option("--heldout-snr", "heldout_snrs", default="3,15", show_default=True, callback=_snrs_or_none,
              help="SNRs (dB) of the held-out attacks (FGSM 8/255, PGD 4/255 and 16/255 on plain and diffusec). "
                   "'none' skips them.")
@seed_option("Seeds the images, attacks and all noise.")
@click.option("--batch", type=click.IntRange(min=1), default=250, show_default=True)
@image_set_option("test: the preset's test split; sample: the embedded sample; auto: test if found, else sample.")
@data_root_option("Dataset folder (see `diffusec eval`).")
@checkpoints_option("Folder with codec, denoiser, classifier, classifier_at and agent (default: checkpoints/<preset>).")
@threads_option()
@device_option()
@click.option("--fresh", is_flag=True, help="Ignore OUT/results.cells.json (finished cells of an earlier run with the "
                                            "same settings, images and checkpoints, which a rerun otherwise reuses).")
@json_option("Print results.json's object as the last stdout line.")
def report_command(preset, out_dir, n, quick, systems, snrs, sampler, steps, attack_steps, channel, k_db, fading_block,
                   adaptive_snrs, heldout_snrs, seed, batch, image_set, data_root, checkpoints, threads, device, fresh, as_json) -> None:
    """Reproduce the DiffuSeC paper's Table II and Fig. 5 (and a Fig. 6 analogue) on our models.

    For every SNR and system: standard accuracy (no attack), robust accuracy under PGD (eps 8/255,
    10 steps, white-box on the system's own classifier: our reading of the paper's protocol) and SSIM. Systems:
    jpeg-ldpc and jpeg-ldpc-at (the conventional baselines), vit (the link without diffusion),
    plain (DiffuSeC, t = 20) and diffusec (the DDPG agent, 3 policy steps from a random start).

    Writes OUT/results.json, OUT/results.md (Table II's layout with the paper's rows quoted beside
    ours, the claims checked) and OUT/results-fig5a-robust.png, results-fig5b-standard.png,
    results-fig6-images.png. With --channel rayleigh|rician every link fades (the fading column:
    run it into its own OUT). The full run (n = 1000, 9 SNRs, 5 systems) takes hours on 2 CPU cores;
    it saves each finished cell in OUT/results.cells.json, so an interrupted run resumes where it stopped.
    """
    from shared.checkpoints import CheckpointError
    from shared.data import DataNotFoundError, load_eval_data
    from shared.report import sweep, tables
    from shared.report.outputs import write_report

    with fail_on(ValueError):
        config = _config(quick, n, snrs, preset=preset, systems=systems, attack_steps=attack_steps, sampler=sampler,
                         sampler_steps=steps, seed=seed, batch=batch, channel=channel, k_db=k_db,
                         fading_block=fading_block, adaptive_snrs_db=adaptive_snrs, heldout_snrs_db=heldout_snrs)
    set_threads(threads)
    with fail_on(CheckpointError, DataNotFoundError, FileNotFoundError):
        models = sweep.load_models(config, checkpoints, device)
        data = load_eval_data(preset, data_root, image_set, config.n, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "results.cells.json"
    if fresh:
        cache.unlink(missing_ok=True)
    result = sweep.run_report(models, data, config, progress=show_progress(as_json), cache_path=cache)
    payload = write_report(result, out, _command_line(preset, out_dir, quick, n))
    if as_json:
        click.echo(json.dumps(payload))
        return
    click.echo(f"report of {preset} on {payload['data']}: {len(payload['runs'])} runs in {payload['wall_time_s']} s")
    click.echo(tables.table_two(payload))
    click.echo("\n".join(tables.claims(payload)))
    click.echo(f"wrote {out / 'results.json'}, {out / 'results.md'} and "
               + ", ".join(str(out / f) for f in payload["figures"].values()))
