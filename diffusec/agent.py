"""``diffusec train agent`` and ``diffusec eval adaptation``: the DDPG step-selection agent (paper IV-D, VI-C).

The DDPG options are made from :class:`shared.agent.ddpg.DDPGConfig`'s fields (their defaults and
``metadata["help"]``), so the config is the one place a hyperparameter is defined.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from shared.agent.ddpg import DDPGConfig
from shared.cli_options import (COMMAND_CONTEXT, checkpoints_option, comma_separated, data_root_option,
                                dataclass_options, device_option, fail, fail_on, image_set_option, in_process_options,
                                json_option, note, preset_option, sampler_option, seed_option, set_threads,
                                show_progress, steps_option, threads_option)

GRID_T_D = "1,5,10,20,30,40,50"
GRID_T_PLUS = "0,10,20,30,40,50"
SNRS_DB = "-6,-3,0,3,6,9,12,15,18"   # the paper's SNR axis (Fig. 5): the grid's and the adaptation curves'
ADAPTATION_SYSTEMS = ("diffusec", "table", "plain")
UNET_CALLS_PER_S = 100   # the grid estimate's speed: cifar10 preset, 2 CPU cores


def _measure_grid(path: Path, preset: str, checkpoints: Path | None, device: str, data_root: str | None,
                  image_set: str, n: int, axes, measure, models_md5: dict):
    """Measure (or finish) the agent's grid into ``path``, saying first how long it will take -> Grid."""
    from shared.agent.grid import GridError, estimate_calls, measure_grid
    from shared.checkpoints import CheckpointError
    from shared.data import DataNotFoundError, load_eval_data
    from shared.pipeline import Pipeline

    with fail_on(CheckpointError, DataNotFoundError, FileNotFoundError):
        pipeline = Pipeline.load(preset, checkpoints, ("codec", "denoiser", "classifier"), device)
        data = load_eval_data(preset, data_root, image_set, n, measure.seed)
    done = set(json.loads(path.read_text()).get("cells", {})) if path.exists() else set()
    calls = estimate_calls(axes, measure, len(data), done)
    hours = calls / UNET_CALLS_PER_S / 3600
    note(f"agent grid: {len(axes.cells())} cells ({len(done)} done) on {data.description}; about "
         f"{calls:.3g} U-Net image-calls left (~{hours:.1f} h at {UNET_CALLS_PER_S}/s) -> {path}")
    with fail_on(GridError):
        return measure_grid(pipeline, data, path, axes, measure, progress=show_progress(), models_md5=models_md5)


def _print_training(manifest: dict, directory: Path) -> None:
    click.echo(f"agent: {directory / 'agent.pt'} after {manifest['steps']} steps in {manifest['wall_time_s']} s; "
               f"curves {manifest['plot']}")
    for snr, m in manifest["metrics"].get("snr", {}).items():
        click.echo(f"  SNR {snr:>4s} dB  reward {m['reward']:.3f}  SSIM {m['ssim']:.3f}  Adv {m['adv']:.3f}  "
                   f"Err {m['err']:.3f}  robust acc {m['robust_accuracy']:.3f}")


@click.command("agent", context_settings=COMMAND_CONTEXT)
@preset_option()
@checkpoints_option("Folder with the models; agent_grid.json, agent.pt/json are written here "
                    "(default: $DIFFUSEC_CHECKPOINTS/<preset> or checkpoints/<preset>).")
@data_root_option("Dataset folder (see `diffusec eval`).")
@image_set_option("Images of the grid's attacked batch: heldout (the training split's held-out images, which no "
                  "model trained on, so the report's test images stay unseen), test, sample or auto.",
                  default="heldout")
@click.option("--grid-only", is_flag=True, help="Measure (or finish) the grid and stop.")
@click.option("--grid-n", type=click.IntRange(min=1), default=256, show_default=True,
              help="Images in the grid's fixed attacked batch (the paper's reward batch B = 256).")
@click.option("--grid-seed", type=int, default=0, show_default=True, help="Seeds the image choice, PGD start and noise.")
@click.option("--grid-t-d", default=GRID_T_D, show_default=True, callback=comma_separated(int, "numbers"),
              help="Grid t_D values.")
@click.option("--grid-t-plus", default=GRID_T_PLUS, show_default=True, callback=comma_separated(int, "numbers"),
              help="Grid t_plus values.")
@click.option("--grid-snr", default=SNRS_DB, show_default=True, callback=comma_separated(float, "numbers"),
              help="Grid SNRs (dB).")
@sampler_option("Purifier in the grid: ddpm (t_P U-Net calls, as the receiver) or the strided ddim (cheaper).")
@click.option("--sampler-steps", type=click.IntRange(min=1), default=5, show_default=True, help="U-Net calls for ddim.")
@click.option("--no-clean", is_flag=True, help="Skip the clean batch in the grid (no clean accuracy; half the cost).")
@click.option("--grid", "grid_path", type=click.Path(dir_okay=False), default=None,
              help="Grid JSON (default: <checkpoints>/agent_grid.json).")
@click.option("--eval-every", type=click.IntRange(min=1), default=250, show_default=True,
              help="Evaluate the actor at SNR -3, 3, 9, 15 dB every this many steps (Fig. 4).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for the training-curve PNG (default: docs/, as agent-training-<preset>.png).")
@threads_option()
@device_option("torch device of the pipeline (grid measurement).")
@dataclass_options(DDPGConfig, help_prefix="DDPG: ")
def train_agent_command(preset, checkpoints, data_root, image_set, grid_only, grid_n, grid_seed, grid_t_d, grid_t_plus,
                        grid_snr, sampler, sampler_steps, no_clean, grid_path, eval_every, out_dir, threads, device,
                        **ddpg) -> None:
    """Train the DDPG step-selection agent (paper IV-D, Algorithm 1) on the measured grid.

    \b
    1. grid: the chain runs once per (t_D, t_plus, SNR) cell on one fixed batch of PGD-attacked
       test images (eps 8/255, 10 steps, white-box on the receiver classifier); SSIM, Adv, Err,
       reward, robust and clean accuracy go to agent_grid.json, written after every cell, so an
       interrupted run resumes where it stopped (same settings).
    2. DDPG on the gymnasium env whose reward interpolates that grid; 3 steps per episode, SNR
       uniform on -3..12 dB; agent.resume.pt every 1000 steps (a re-run continues it), agent.pt
       and agent.json at the end, and the training curves (reward, SSIM, Adv, Err at SNR -3, 3,
       9, 15 dB, as the paper's Fig. 4) as a PNG.

    Cost on 2 CPU cores (cifar10 preset, roughly 100 U-Net image-calls/s): the default ddpm grid
    (378 cells, 256 attacked + 256 clean images) is ~9e6 image-calls, about a day; with
    `--sampler ddim --grid-n 128` it is ~4.8e5 (about 1.5 h), half that with --no-clean. The
    command prints its estimate before it starts. Training on the grid is a minute or two.
    """
    from shared.agent.grid import GRID_CHECKPOINTS, GRID_FILE, GridAxes, Measure
    from shared.agent.train import matching_grid, train_agent
    from shared.checkpoints import checkpoint_md5s, resolve_checkpoint_dir

    set_threads(threads)
    directory = resolve_checkpoint_dir(preset, checkpoints)
    path = Path(grid_path) if grid_path else directory / GRID_FILE
    with fail_on(ValueError, TypeError):
        axes = GridAxes(grid_t_d, grid_t_plus, grid_snr)
        config = DDPGConfig(**ddpg)
    if config.learning_starts >= config.total_steps and not grid_only:
        fail(f"--total-steps {config.total_steps} must exceed --learning-starts {config.learning_starts}")
    measure = Measure(sampler, sampler_steps, grid_seed, clean=not no_clean)
    models_md5 = checkpoint_md5s(directory, GRID_CHECKPOINTS)
    grid = matching_grid(path, preset, axes, measure, grid_n, models_md5)
    if grid is None:
        grid = _measure_grid(path, preset, directory if checkpoints else None, device, data_root, image_set, grid_n,
                             axes, measure, models_md5)
    note(f"agent grid: {path} ({len(grid.axes.cells())} cells, attack fooled the bare classifier on "
         f"{grid.meta.get('attack_fooled_rate')} of the batch)")
    if grid_only:
        return
    plot = Path(out_dir or "docs") / f"agent-training-{preset}.png"
    manifest = train_agent(grid, directory, preset, config, eval_every=eval_every, progress=show_progress(),
                           plot_path=plot, log=note)
    _print_training(manifest, directory)


def _adaptation_systems(systems: str) -> list[str]:
    """``--systems "diffusec,plain"`` -> ["diffusec", "plain"]; fails on an unknown system."""
    chosen = [s.strip() for s in systems.split(",") if s.strip()]
    if not chosen or any(s not in ADAPTATION_SYSTEMS for s in chosen):
        fail(f"--systems must list diffusec, table and/or plain, got {systems!r}")
    return chosen


@click.command("adaptation", context_settings=COMMAND_CONTEXT)
@preset_option()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Folder for adaptation.json and adaptation.png.")
@click.option("--n", "n", type=click.IntRange(min=1), default=None, help="Test images per point (default 100; 16 with --quick).")
@click.option("--quick", is_flag=True, help="Smoke-sized: SNR every 6 dB, 3 PGD steps, the 5-call DDIM purifier.")
@click.option("--snr", "snrs", default=SNRS_DB, show_default=True, callback=comma_separated(float, "numbers"),
              help="SNRs (dB).")
@click.option("--systems", default=",".join(ADAPTATION_SYSTEMS), show_default=True,
              help="Comma-separated: diffusec (DDPG actor), table (grid oracle), plain (t_D 20, t_plus 0).")
@sampler_option("Default ddpm (ddim with --quick).", default=None)
@steps_option("U-Net calls for ddim.")
@click.option("--attack-steps", type=click.IntRange(min=1), default=10, show_default=True, help="PGD steps (paper: 10).")
@seed_option()
@in_process_options()
@json_option("Print the adaptation.json object as the last stdout line.")
def eval_adaptation_command(preset, out_dir, n, quick, snrs, systems, sampler, steps, attack_steps, seed, image_set,
                            data_root, checkpoints, batch, threads, device, as_json) -> None:
    """Robust accuracy (PGD 8/255, white-box on the classifier) vs SNR: DDPG agent, grid oracle, plain.

    diffusec and table follow paper VI-C (random initial state per batch, 3 policy steps, accuracy
    averaged over them); plain keeps t_D = 20, t_plus = 0. Writes OUT/adaptation.json and .png.
    """
    from shared.agent.evaluate import run_adaptation
    from shared.agent.policy import load_step_policy
    from shared.attacks.source import SourceAttack
    from shared.checkpoints import CheckpointError, resolve_checkpoint_dir
    from shared.data import DataNotFoundError, load_eval_data
    from shared.pipeline import Pipeline
    from shared.report.outputs import write_adaptation

    set_threads(threads)
    chosen = _adaptation_systems(systems)
    if quick:
        snrs = tuple(s for s in snrs if (s + 6) % 6 == 0) or snrs
        attack_steps = min(attack_steps, 3)
        sampler = sampler or "ddim"
    directory = resolve_checkpoint_dir(preset, checkpoints)
    with fail_on(CheckpointError, DataNotFoundError, FileNotFoundError, ValueError):
        policies = {s: load_step_policy("ddpg" if s == "diffusec" else "table", directory, preset)
                    for s in chosen if s != "plain"}
        pipeline = Pipeline.load(preset, checkpoints, ("codec", "denoiser", "classifier"), device)
        data = load_eval_data(preset, data_root, image_set, n or (16 if quick else 100), seed)
    attack = SourceAttack("pgd", 8 / 255, steps=attack_steps)
    result = run_adaptation(pipeline, data, policies, snrs, attack, seed, batch, sampler or "ddpm", steps,
                            plain=(20, 0) if "plain" in chosen else None, progress=show_progress(as_json))
    result = write_adaptation(result, out_dir)
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"robust accuracy vs SNR ({preset}, {result['data']}, {result['wall_time_s']} s):")
    for system, curve in result["curves"].items():
        click.echo(f"  {system:9s} " + "  ".join(f"{s:g} dB {a:.3f}" for s, a in zip(curve["snr_db"], curve["robust_accuracy"])))
    click.echo(f"  wrote {Path(out_dir) / 'adaptation.json'} and {result['plot']}")
