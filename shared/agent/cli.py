"""Click commands of the agent: `diffusec train agent`, `diffusec eval adaptation`, and the
`diffusec eval --system diffusec|table` branch. Light to import: torch loads when a command runs."""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import click

from ..devices import DEVICE
from ..presets import DEFAULT_PRESET, PRESETS

GRID_T_D = "1,5,10,20,30,40,50"
GRID_T_PLUS = "0,10,20,30,40,50"
GRID_SNR = "-6,-3,0,3,6,9,12,15,18"


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _numbers(kind):
    def parse(ctx, param, value):
        try:
            return tuple(kind(v) for v in value.split(",") if v.strip())
        except ValueError:
            raise click.BadParameter(f"give comma-separated numbers, got {value!r}", ctx=ctx, param=param) from None
    return parse


def ddpg_options(func):
    """One option per :class:`~shared.agent.ddpg.DDPGConfig` field, with its default and comment."""
    import inspect

    from .ddpg import DDPGConfig

    source = inspect.getsource(DDPGConfig)
    comments = {}
    for line in source.splitlines():
        if ":" in line and "#" in line and "=" in line:
            comments[line.split(":")[0].strip()] = line.split("#", 1)[1].strip()
    for f in reversed(dataclasses.fields(DDPGConfig)):
        func = click.option(f"--{f.name.replace('_', '-')}", f.name, type=type(f.default), default=f.default,
                            show_default=True, help=f"DDPG: {comments.get(f.name, f.name)}.")(func)
    return func


def _progress(as_json: bool = False) -> bool:
    return not as_json and sys.stderr.isatty() and not os.environ.get("DIFFUSEC_NO_PROGRESS")


@click.command("agent", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--preset", type=click.Choice(list(PRESETS)), default=DEFAULT_PRESET, show_default=True)
@click.option("--checkpoints", type=click.Path(file_okay=False), default=None,
              help="Folder with the models; agent_grid.json, agent.pt/json are written here "
                   "(default: $DIFFUSEC_CHECKPOINTS/<preset> or checkpoints/<preset>).")
@click.option("--data-root", type=click.Path(file_okay=False, exists=True), default=None, help="Dataset folder (see `diffusec eval`).")
@click.option("--data", "source", type=click.Choice(["auto", "test", "sample"]), default="auto", show_default=True,
              help="Images of the grid's attacked batch: the test split, or the embedded sample.")
@click.option("--grid-only", is_flag=True, help="Measure (or finish) the grid and stop.")
@click.option("--grid-n", type=click.IntRange(min=1), default=256, show_default=True,
              help="Test images in the grid's fixed attacked batch (the paper's reward batch B = 256).")
@click.option("--grid-seed", type=int, default=0, show_default=True, help="Seeds the image choice, PGD start and noise.")
@click.option("--grid-t-d", default=GRID_T_D, show_default=True, callback=_numbers(int), help="Grid t_D values.")
@click.option("--grid-t-plus", default=GRID_T_PLUS, show_default=True, callback=_numbers(int), help="Grid t_plus values.")
@click.option("--grid-snr", default=GRID_SNR, show_default=True, callback=_numbers(float), help="Grid SNRs (dB).")
@click.option("--sampler", type=click.Choice(["ddpm", "ddim"]), default="ddpm", show_default=True,
              help="Purifier in the grid: ddpm (t_P U-Net calls, as the receiver) or the strided ddim (cheaper).")
@click.option("--sampler-steps", type=click.IntRange(min=1), default=5, show_default=True, help="U-Net calls for ddim.")
@click.option("--no-clean", is_flag=True, help="Skip the clean batch in the grid (no clean accuracy; half the cost).")
@click.option("--grid", "grid_path", type=click.Path(dir_okay=False), default=None,
              help="Grid JSON (default: <checkpoints>/agent_grid.json).")
@click.option("--eval-every", type=click.IntRange(min=1), default=250, show_default=True,
              help="Evaluate the actor at SNR -3, 3, 9, 15 dB every this many steps (Fig. 4).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for the training-curve PNG (default: docs/, as agent-training-<preset>.png).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch threads (default: all cores).")
@click.option("--device", type=DEVICE, default="cpu", show_default=True, help="torch device of the pipeline (grid measurement).")
@ddpg_options
def train_agent_command(preset, checkpoints, data_root, source, grid_only, grid_n, grid_seed, grid_t_d, grid_t_plus,
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
    import torch

    from ..checkpoints import CheckpointError, default_checkpoint_dir
    from ..cli import load_eval_data
    from ..data import DataNotFoundError
    from .ddpg import DDPGConfig
    from .grid import GRID_FILE, Grid, GridAxes, GridError, Measure, estimate_calls, measure_grid
    from .train import train_agent

    if threads:
        torch.set_num_threads(threads)
    directory = Path(checkpoints) if checkpoints else default_checkpoint_dir(preset)
    path = Path(grid_path) if grid_path else directory / GRID_FILE
    try:
        axes = GridAxes(grid_t_d, grid_t_plus, grid_snr)
        config = DDPGConfig(**ddpg)
    except (ValueError, TypeError) as err:
        _fail(str(err))
    if config.learning_starts >= config.total_steps and not grid_only:
        _fail(f"--total-steps {config.total_steps} must exceed --learning-starts {config.learning_starts}")
    measure = Measure(sampler, sampler_steps, grid_seed, clean=not no_clean)
    grid = None
    if path.exists():
        try:
            grid = Grid.load(path, preset)
            header = grid.meta.get("header", {})
            if (header.get("sampler"), header.get("n"), header.get("clean")) != (sampler, grid_n, not no_clean) \
                    or tuple(grid.axes.t_d) != axes.t_d or tuple(grid.axes.t_plus) != axes.t_plus \
                    or tuple(grid.axes.snr_db) != axes.snr_db:
                grid = None      # measure_grid checks the header and resumes or refuses
        except GridError:
            grid = None
    if grid is None:
        from ..pipeline import Pipeline

        try:
            pipeline = Pipeline.load(preset, directory if checkpoints else None, ("codec", "denoiser", "classifier"), device)
            data = load_eval_data(preset, data_root, source, grid_n, grid_seed)
        except (CheckpointError, DataNotFoundError, FileNotFoundError) as err:
            _fail(str(err))
        done = set(json.loads(path.read_text()).get("cells", {})) if path.exists() else set()
        calls = estimate_calls(axes, measure, len(data), done)
        click.echo(f"agent grid: {len(axes.cells())} cells ({len(done)} done) on {data.description}; about "
                   f"{calls:.3g} U-Net image-calls left (~{calls / 100 / 3600:.1f} h at 100/s) -> {path}", err=True)
        try:
            grid = measure_grid(pipeline, data, path, axes, measure, progress=_progress())
        except GridError as err:
            _fail(str(err))
    click.echo(f"agent grid: {path} ({len(grid.axes.cells())} cells, attack fooled the bare classifier on "
               f"{grid.meta.get('attack_fooled_rate')} of the batch)", err=True)
    if grid_only:
        return
    plot = Path(out_dir) / f"agent-training-{preset}.png" if out_dir else Path("docs") / f"agent-training-{preset}.png"
    manifest = train_agent(grid, directory, preset, config, eval_every=eval_every, progress=_progress(),
                           plot_path=plot, log=lambda m: click.echo(m, err=True))
    final = manifest["metrics"]
    click.echo(f"agent: {directory / 'agent.pt'} after {manifest['steps']} steps in {manifest['wall_time_s']} s; "
               f"curves {manifest['plot']}")
    for snr, m in final.get("snr", {}).items():
        click.echo(f"  SNR {snr:>4s} dB  reward {m['reward']:.3f}  SSIM {m['ssim']:.3f}  Adv {m['adv']:.3f}  "
                   f"Err {m['err']:.3f}  robust acc {m['robust_accuracy']:.3f}")


def run_adaptive_eval(system: str, preset: str, checkpoints: str | None, pipeline, data, snr_db: float, seed: int,
                      batch: int, sampler: str, steps: int, progress: bool, source_attack, channel_attack,
                      policy_steps: int = 3) -> dict:
    """`diffusec eval --system diffusec|table`: load the policy (CheckpointError/GridError if absent) and evaluate."""
    from ..checkpoints import default_checkpoint_dir
    from .evaluate import evaluate_adaptive
    from .policy import load_step_policy

    directory = Path(checkpoints) if checkpoints else default_checkpoint_dir(preset)
    policy = load_step_policy("ddpg" if system == "diffusec" else "table", directory, preset)
    return evaluate_adaptive(pipeline, data, system, policy, snr_db, seed, batch, sampler, steps, progress,
                             source_attack, channel_attack, policy_steps)


@click.command("adaptation", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--preset", type=click.Choice(list(PRESETS)), default=DEFAULT_PRESET, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Folder for adaptation.json and adaptation.png.")
@click.option("--n", "n", type=click.IntRange(min=1), default=None, help="Test images per point (default 100; 16 with --quick).")
@click.option("--quick", is_flag=True, help="Smoke-sized: SNR every 6 dB, 3 PGD steps, the 5-call DDIM purifier.")
@click.option("--snr", "snrs", default="-6,-3,0,3,6,9,12,15,18", show_default=True, callback=_numbers(float),
              help="SNRs (dB).")
@click.option("--systems", default="diffusec,table,plain", show_default=True,
              help="Comma-separated: diffusec (DDPG actor), table (grid oracle), plain (t_D 20, t_plus 0).")
@click.option("--sampler", type=click.Choice(["ddpm", "ddim"]), default=None, help="Default ddpm (ddim with --quick).")
@click.option("--steps", type=click.IntRange(min=1), default=5, show_default=True, help="U-Net calls for ddim.")
@click.option("--attack-steps", type=click.IntRange(min=1), default=10, show_default=True, help="PGD steps (paper: 10).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--data", "source", type=click.Choice(["auto", "test", "sample"]), default="auto", show_default=True)
@click.option("--data-root", type=click.Path(file_okay=False, exists=True), default=None)
@click.option("--checkpoints", type=click.Path(file_okay=False), default=None)
@click.option("--batch", type=click.IntRange(min=1), default=250, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None)
@click.option("--device", type=DEVICE, default="cpu", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the adaptation.json object as the last stdout line.")
def eval_adaptation_command(preset, out_dir, n, quick, snrs, systems, sampler, steps, attack_steps, seed, source,
                            data_root, checkpoints, batch, threads, device, as_json) -> None:
    """Robust accuracy (PGD 8/255, white-box on the classifier) vs SNR: DDPG agent, grid oracle, plain.

    diffusec and table follow paper VI-C (random initial state per batch, 3 policy steps, accuracy
    averaged over them); plain keeps t_D = 20, t_plus = 0. Writes OUT/adaptation.json and .png.
    """
    import torch

    from ..attacks.source import SourceAttack
    from ..checkpoints import CheckpointError, default_checkpoint_dir
    from ..cli import load_eval_data
    from ..data import DataNotFoundError
    from ..pipeline import Pipeline
    from .evaluate import run_adaptation
    from .plots import plot_adaptation
    from .policy import load_step_policy

    if threads:
        torch.set_num_threads(threads)
    chosen = [s.strip() for s in systems.split(",") if s.strip()]
    if not chosen or any(s not in ("diffusec", "table", "plain") for s in chosen):
        _fail(f"--systems must list diffusec, table and/or plain, got {systems!r}")
    if quick:
        snrs = tuple(s for s in snrs if (s + 6) % 6 == 0) or snrs
        attack_steps = min(attack_steps, 3)
        sampler = sampler or "ddim"
    directory = Path(checkpoints) if checkpoints else default_checkpoint_dir(preset)
    try:
        policies = {s: load_step_policy("ddpg" if s == "diffusec" else "table", directory, preset)
                    for s in chosen if s != "plain"}
        pipeline = Pipeline.load(preset, checkpoints, ("codec", "denoiser", "classifier"), device)
        data = load_eval_data(preset, data_root, source, n or (16 if quick else 100), seed)
    except (CheckpointError, DataNotFoundError, FileNotFoundError, ValueError) as err:
        _fail(str(err))
    attack = SourceAttack("pgd", 8 / 255, steps=attack_steps)
    result = run_adaptation(pipeline, data, policies, snrs, attack, seed, batch, sampler or "ddpm", steps,
                            plain=(20, 0) if "plain" in chosen else None, progress=_progress(as_json))
    out = Path(out_dir)
    result["plot"] = plot_adaptation(result, out / "adaptation.png")
    out.mkdir(parents=True, exist_ok=True)
    (out / "adaptation.json").write_text(json.dumps(result, indent=1) + "\n")
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"robust accuracy vs SNR ({preset}, {result['data']}, {result['wall_time_s']} s):")
    for system, curve in result["curves"].items():
        click.echo(f"  {system:9s} " + "  ".join(f"{s:g} dB {a:.3f}" for s, a in zip(curve["snr_db"], curve["robust_accuracy"])))
    click.echo(f"  wrote {out / 'adaptation.json'} and {result['plot']}")
