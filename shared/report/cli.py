"""`diffusec report`: one command for the reproduction report (results.json, results.md, PNGs)."""
from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import click

from ..devices import DEVICE
from ..presets import DEFAULT_PRESET, PRESETS
from .sweep import SNRS_DB, SYSTEMS, ReportConfig


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _csv(kind):
    def parse(ctx, param, value):
        if value is None:
            return None
        try:
            return tuple(kind(v.strip()) for v in value.split(",") if v.strip())
        except ValueError:
            raise click.BadParameter(f"give comma-separated values, got {value!r}", ctx=ctx, param=param) from None
    return parse


@click.command("report", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--preset", type=click.Choice(list(PRESETS)), default=DEFAULT_PRESET, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Folder for results.json, results.md and the results-*.png figures.")
@click.option("--n", type=click.IntRange(min=1), default=None, help="Test images per cell (default 1000; 24 with --quick).")
@click.option("--quick", is_flag=True, help="Smoke-sized: 24 images, SNRs -6/3/12 dB, PGD 2 steps, a 2-call purifier.")
@click.option("--systems", default=",".join(SYSTEMS), show_default=True, callback=_csv(str),
              help="Comma-separated systems: " + ", ".join(SYSTEMS) + ".")
@click.option("--snr", "snrs", default=",".join(f"{s:g}" for s in SNRS_DB), show_default=True, callback=_csv(float),
              help="Channel SNRs (dB).")
@click.option("--sampler", type=click.Choice(["ddim", "ddpm"]), default="ddim", show_default=True,
              help="Purifier of plain and diffusec: ddim (strided, --steps U-Net calls; the agent's grid was measured "
                   "with it) or ddpm (the paper's chain, t_P calls: about 4x slower at t_P = 20).")
@click.option("--steps", type=click.IntRange(min=1), default=5, show_default=True, help="U-Net calls of the ddim purifier.")
@click.option("--attack-steps", type=click.IntRange(min=1), default=10, show_default=True, help="PGD steps (paper: 10).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the images, attacks and all noise.")
@click.option("--batch", type=click.IntRange(min=1), default=250, show_default=True)
@click.option("--data", "source", type=click.Choice(["auto", "test", "sample"]), default="auto", show_default=True,
              help="test: the preset's test split; sample: the embedded sample; auto: test if found, else sample.")
@click.option("--data-root", type=click.Path(file_okay=False, exists=True), default=None, help="Dataset folder (see `diffusec eval`).")
@click.option("--checkpoints", type=click.Path(file_okay=False), default=None,
              help="Folder with codec, denoiser, classifier, classifier_at and agent (default: checkpoints/<preset>).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch threads (default: all cores).")
@click.option("--device", type=DEVICE, default="cpu", show_default=True)
@click.option("--fresh", is_flag=True, help="Ignore OUT/results.cells.json (finished cells of an earlier run with the "
                                            "same settings, images and checkpoints, which a rerun otherwise reuses).")
@click.option("--json", "as_json", is_flag=True, help="Print results.json's object as the last stdout line.")
def report_command(preset, out_dir, n, quick, systems, snrs, sampler, steps, attack_steps, seed, batch, source,
                   data_root, checkpoints, threads, device, fresh, as_json) -> None:
    """Reproduce the DiffuSeC paper's Table II and Fig. 5 (and a Fig. 6 analogue) on our models.

    For every SNR and system: standard accuracy (no attack), robust accuracy under PGD (eps 8/255,
    10 steps, white-box on the system's own classifier: our reading of the paper's protocol) and SSIM. Systems:
    jpeg-ldpc and jpeg-ldpc-at (the conventional baselines), vit (the link without diffusion),
    plain (DiffuSeC, t = 20) and diffusec (the DDPG agent, 3 policy steps from a random start).

    Writes OUT/results.json, OUT/results.md (Table II's layout with the paper's rows quoted beside
    ours, the claims checked) and OUT/results-fig5a-robust.png, results-fig5b-standard.png,
    results-fig6-images.png. The full run (n = 1000, 9 SNRs, 5 systems) takes hours on 2 CPU cores;
    it saves each finished cell in OUT/results.cells.json, so an interrupted run resumes where it stopped.
    """
    import torch

    from ..checkpoints import CheckpointError, git_commit
    from ..cli import load_eval_data
    from ..data import DataNotFoundError
    from . import figures, sweep, tables

    try:
        config = ReportConfig(preset=preset, n=n or 1000, snrs_db=snrs, systems=systems, attack_steps=attack_steps,
                              sampler=sampler, sampler_steps=steps, seed=seed, batch=batch)
        if quick:
            from dataclasses import replace

            config = sweep.quick(config)
            config = replace(config, n=n) if n else config
            if click.get_current_context().get_parameter_source("snrs") != click.core.ParameterSource.DEFAULT:
                config = replace(config, snrs_db=snrs)   # an explicit --snr wins over --quick's three
    except ValueError as err:
        _fail(str(err))
    if threads:
        torch.set_num_threads(threads)
    try:
        models = sweep.load_models(config, checkpoints, device)
        data = load_eval_data(preset, data_root, source, config.n, seed)
    except (CheckpointError, DataNotFoundError, FileNotFoundError) as err:
        _fail(str(err))
    progress = not as_json and sys.stderr.isatty() and not os.environ.get("DIFFUSEC_NO_PROGRESS")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "results.cells.json"
    if fresh:
        cache.unlink(missing_ok=True)
    result = sweep.run_report(models, data, config, progress=progress, cache_path=cache)
    payload = result.to_dict()
    command = "diffusec " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["report"] else \
        f"diffusec report --preset {preset} --out {out_dir}" + (" --quick" if quick else "") + (f" --n {n}" if n else "")
    commit = git_commit()
    payload.update(command=command, commit=commit)
    names = figures.write_figures(payload, result.figure, out)
    payload["figures"] = names
    (out / "results.json").write_text(json.dumps(payload, indent=1) + "\n")
    (out / "results.md").write_text(tables.markdown(payload, command, commit, names) + "\n")
    if as_json:
        click.echo(json.dumps(payload))
        return
    click.echo(f"report of {preset} on {payload['data']}: {len(payload['runs'])} runs in {payload['wall_time_s']} s")
    click.echo(tables.table_two(payload))
    click.echo("\n".join(tables.claims(payload)))
    click.echo(f"wrote {out / 'results.json'}, {out / 'results.md'} and " + ", ".join(str(out / f) for f in names.values()))
