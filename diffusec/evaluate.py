"""``diffusec eval``: accuracy and SSIM of one system on the test split, in one process.

``eval`` is also the group of the in-process experiments (``eval attacks``, ``eval
purification``, ``eval adaptation``), registered by :mod:`diffusec.cli`.
"""
from __future__ import annotations

import contextlib
import json
import math

import click

from shared.attacks.options import build_source_attack, source_attack_options
from shared.cli_options import (fail, fail_on, in_process_options, json_option, link_channel_options,
                                preset_option, sampler_option, seed_option, set_threads, show_progress, steps_option,
                                t_d_option, t_plus_option)
from shared.presets import NUM_TIMESTEPS

SYSTEMS = ("classifier", "vit", "plain", "diffusec", "table", "jpeg-ldpc", "jpeg-ldpc-at")
ADAPTIVE_SYSTEMS = ("diffusec", "table")   # the step policy chooses t_D and t_plus
# The fields the text output shows, in order (the JSON has them all).
SHOWN_FIELDS = ("accuracy", "ssim", "snr_db", "channel", "k_db", "fading_block", "csi", "pilot_symbols", "equaliser",
                "t_d", "t_plus", "sampler", "sampler_steps", "link_mode", "decode_failure_rate", "bandwidth_ratio",
                "channel_symbols", "n", "wall_time_s", "images_per_s", "grid", "attack_success_rate")
SHOWN_ADAPTIVE_FIELDS = ("accuracy", "ssim", "snr_db", "channel", "k_db", "fading_block", "csi", "pilot_symbols",
                         "equaliser", "policy", "policy_steps", "mean_t_d", "mean_t_plus", "sampler",
                         "n", "wall_time_s", "attack_success_rate")


def check_eval_args(threads: int | None, snr_db: float, t_d: int, t_plus: int) -> None:
    """Set torch's threads; fail clearly on a non-finite SNR (dB) or t_P = t_D + t_plus beyond T."""
    set_threads(threads)
    if not math.isfinite(snr_db):
        fail(f"--snr-db must be a finite number of dB, got {snr_db}")
    if t_d + t_plus > NUM_TIMESTEPS:
        fail(f"t_P = t_D + t_plus = {t_d + t_plus} exceeds T = {NUM_TIMESTEPS} diffusion steps")


@contextlib.contextmanager
def wireless_module_required():
    """Inside the block, a checkout without shared/attacks/wireless.py fails with that message
    (:func:`shared.attacks.chain.wireless_module`); any other RuntimeError is a bug and raises."""
    try:
        yield
    except RuntimeError as err:
        if "wireless.py" not in str(err):
            raise
        fail(str(err))


def _check_link_mode(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """``--link-mode``: "adaptive" or a mode name such as 16qam-3/4 (BadParameter listing the modes otherwise)."""
    if value == "adaptive":
        return value
    from shared.baselines.link_modes import LinkMode

    try:
        return LinkMode.parse(value).name
    except ValueError as err:
        raise click.BadParameter(f"{err}; or adaptive", ctx=ctx, param=param) from None


def _channel_attack(system: str, kind: str, pnr_db: float | None, method: str, steps: int, target: int | None,
                    adaptive: bool):
    """The ChannelAttack that --channel-attack and its options describe (None for "none"); ValueError if unusable."""
    if kind == "none":
        return None
    from shared.attacks.chain import ChannelAttack

    if system == "classifier":
        raise ValueError("--channel-attack needs a link: use --system vit or plain")
    if pnr_db is None:
        raise ValueError("--channel-attack needs --pnr-db (perturbation-to-noise ratio, dB)")
    return ChannelAttack(kind, pnr_db, method=method, steps=steps, target=target if kind == "adversarial" else None,
                         adaptive=adaptive)


def _attacks(system: str, link_mode: str, source: dict, channel: dict):
    """(source attack, channel attack) from the options; fails on a combination ``system`` cannot run.

    ``source``: the options of :func:`~shared.attacks.options.source_attack_options` by name;
    ``channel``: kind, pnr_db (dB) and method of --channel-attack.
    """
    from shared.attacks.chain import check_digital_attacks
    from shared.evaluate import attack_target
    from shared.pipeline import DIGITAL_SYSTEMS

    with fail_on(ValueError):
        attack = build_source_attack(**source)
        wireless = _channel_attack(system, **channel, steps=source["attack_steps"], target=source["target"],
                                   adaptive=source["adaptive"])
        attack_target(attack, wireless)
        if system in DIGITAL_SYSTEMS:
            check_digital_attacks(system, attack, wireless)
        elif link_mode != "adaptive":
            raise ValueError("--link-mode applies to --system jpeg-ldpc and jpeg-ldpc-at only")
    if source["target"] is not None and attack is None and (wireless is None or wireless.kind != "adversarial"):
        fail("--target needs --source-attack fgsm|pgd or --channel-attack adversarial")
    return attack, wireless


def _link_channel(system: str, kind: str, k_db: float | None, fading_block: int | None, csi: str | None,
                  pilot_symbols: int | None, equaliser: str | None):
    """The shared.fading.LinkChannel of --channel and its options; fails where ``system`` has no such link."""
    from shared.fading import link_channel
    from shared.pipeline import DIGITAL_SYSTEMS

    with fail_on(ValueError):
        chosen = link_channel(kind, k_db, fading_block, csi, pilot_symbols, equaliser)
    if chosen.kind != "awgn" and system == "classifier":
        fail(f"--channel {chosen.kind}: the classifier alone has no link")
    if chosen.kind != "awgn" and system in DIGITAL_SYSTEMS and chosen.equaliser != "zf":
        fail(f"--channel {chosen.kind}: {system}'s bit LLRs need the zf equaliser (the noise of each symbol after it)")
    return chosen


def channel_fields(chosen) -> dict:
    """The JSON fields a fading channel adds (channel, k_db, fading_block, csi, pilot_symbols, equaliser);
    none for AWGN, whose JSON stays as it always was."""
    return {} if chosen.kind == "awgn" else chosen.to_dict()


def _load(system: str, preset: str, checkpoints: str | None, device: str, link_mode: str, data_root: str | None,
          image_set: str, n: int, seed: int, target: int | None):
    """(pipeline with the parts ``system`` needs, the ``n`` test images); fails on what is missing."""
    from shared.checkpoints import CheckpointError
    from shared.data import DataNotFoundError, load_eval_data
    from shared.evaluate import model_parts
    from shared.pipeline import Pipeline, classifier_kind_for

    with fail_on(CheckpointError, DataNotFoundError, FileNotFoundError):
        pipeline = Pipeline.load(preset, checkpoints, model_parts(system), device,
                                 classifier_kind=classifier_kind_for(system))
        pipeline.link_mode = link_mode
        data = load_eval_data(preset, data_root, image_set, n, seed)
    classes = pipeline.preset.num_classes
    if target is not None and target >= classes:
        fail(f"--target {target} out of range: preset {preset} has {classes} classes (0...{classes - 1})")
    return pipeline, data


def _adaptive_payload(system: str, preset: str, checkpoints: str | None, pipeline, data, snr_db: float, seed: int,
                      batch: int, sampler: str, steps: int, progress: bool, attack, wireless) -> dict:
    """`eval --system diffusec|table`: the trained actor or the grid oracle picks the steps (paper VI-C)."""

    from shared.agent.evaluate import evaluate_adaptive
    from shared.agent.policy import load_step_policy
    from shared.checkpoints import CheckpointError, resolve_checkpoint_dir

    directory = resolve_checkpoint_dir(preset, checkpoints)
    with fail_on(CheckpointError, FileNotFoundError):
        policy = load_step_policy("ddpg" if system == "diffusec" else "table", directory, preset)
        return evaluate_adaptive(pipeline, data, system, policy, snr_db, seed, batch, sampler, steps, progress,
                                 attack, wireless)


def _print_fields(payload: dict, fields: tuple[str, ...]) -> None:
    """One ``  name  value`` line per field of ``fields`` that has a value."""
    for key in fields:
        if payload.get(key) is not None:
            click.echo(f"  {key:16s} {payload[key]}")


def _print_result(system: str, payload: dict) -> None:
    click.echo(f"{system} on {payload['data']}")
    _print_fields(payload, SHOWN_FIELDS)
    for key in ("source_attack", "channel_attack"):
        if payload.get(key) is not None:
            shown_attack = {k: v for k, v in payload[key].items() if v is not None}
            click.echo(f"  {key:16s} {json.dumps(shown_attack)}")


def _print_adaptive(system: str, payload: dict) -> None:
    click.echo(f"{system} on {payload['data']}")
    _print_fields(payload, SHOWN_ADAPTIVE_FIELDS)
    click.echo(f"  {'visited':16s} {payload['visited'][:4]}{' ...' if len(payload['visited']) > 4 else ''}")


@click.group("eval", invoke_without_command=True)
@preset_option()
@click.option("--system", type=click.Choice(SYSTEMS), default="plain", show_default=True,
              help="classifier: classifier alone on clean images; vit: the link without diffusion "
                   "(the paper's ViT-based); plain: DiffuSeC with fixed symmetric steps; diffusec: DiffuSeC with "
                   "the DDPG agent (VI-C: random initial t_D/t_plus per batch, 3 policy steps at the SNR, accuracy "
                   "averaged over them; needs `diffusec train agent`); table: the same with the grid oracle; "
                   "jpeg-ldpc: the conventional baseline, JPEG + CRC + 5G NR LDPC + QAM (Sionna) on the same channel and "
                   "number of channel uses, then the same classifier (docs/baselines.md); jpeg-ldpc-at: the same "
                   "with the PGD-trained classifier_at.pt (`diffusec train classifier --adversarial`).")
@click.option("--link-mode", default="adaptive", show_default=True, callback=_check_link_mode,
              help="jpeg-ldpc(-at) only: 'adaptive' (the highest-throughput mode whose measured frame error rate at the "
                   "SNR is below 10%) or a fixed MODULATION-RATE, modulation qpsk|16qam|64qam, rate 1/2|2/3|3/4|5/6, "
                   "e.g. 16qam-3/4.")
@click.option("--snr-db", type=float, default=15.0, show_default=True,
              help="Channel SNR in dB (per real symbol; the average SNR under fading).")
@link_channel_options
@click.option("--n", "n", type=click.IntRange(min=1), default=1000, show_default=True, help="Number of test images.")
@t_d_option("Diffusing timesteps t_D at the sender (plain).")
@t_plus_option("Plus steps: the receiver denoises from t_P = t_D + t_plus (plain).")
@sampler_option("ddpm: the full reverse chain t_P -> 0 (t_P network calls); ddim: strided, --steps calls.")
@steps_option()
@seed_option("Seeds the image choice and all noise.")
@click.option("--noise-seed", type=int, default=None,
              help="Seeds the noise (diffusion, channel, purification, attack starts) apart from the image choice "
                   "(default: --seed), to see how much a figure moves with the noise alone on the same images.")
@in_process_options("test: the preset's test split (error if absent); sample: the embedded sample; "
                    "auto: test split if found, else the embedded sample.")
@click.option("--grid", type=click.Path(dir_okay=False), default=None,
              help="Also write a PNG of the first 10 images: original and what the receiver ends with.")
@json_option()
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
def eval_command(ctx, preset, system, link_mode, snr_db, channel, k_db, fading_block, csi, pilot_symbols, equaliser, n,
                 t_d, t_plus, sampler, steps, seed, noise_seed, image_set, data_root, checkpoints, batch, threads,
                 device, grid, as_json, channel_attack, pnr_db, channel_attack_method, **source_options) -> None:
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

    Under fading (--channel rayleigh|rician) the JSON adds channel, k_db, fading_block, csi,
    pilot_symbols and equaliser (shared/fading.py; docs/fading.md).

    `diffusec eval attacks` sweeps the attacks and plots them (see `diffusec eval attacks --help`).
    """
    if ctx.invoked_subcommand is not None:
        return
    from shared.evaluate import evaluate, save_received_grid

    noise = seed if noise_seed is None else noise_seed
    check_eval_args(threads, snr_db, t_d, t_plus)
    fading = _link_channel(system, channel, k_db, fading_block, csi, pilot_symbols, equaliser)
    attack, wireless = _attacks(system, link_mode, source_options,
                                {"kind": channel_attack, "pnr_db": pnr_db, "method": channel_attack_method})
    pipeline, data = _load(system, preset, checkpoints, device, link_mode, data_root, image_set, n, seed,
                           source_options["target"])
    pipeline.link_channel = fading
    progress = show_progress(as_json)
    if system in ADAPTIVE_SYSTEMS:
        payload = _adaptive_payload(system, preset, checkpoints, pipeline, data, snr_db, noise, batch, sampler, steps,
                                    progress, attack, wireless)
    else:
        with wireless_module_required():
            result = evaluate(pipeline, data, system, snr_db, t_d, t_plus, noise, batch, sampler, steps,
                              progress=progress, source_attack=attack, channel_attack=wireless)
        payload = result.to_dict()
        payload["image_seed"] = seed  # "seed" is the noise seed (the same unless --noise-seed)
        if grid:
            payload["grid"] = save_received_grid(pipeline, data, system, snr_db, t_d, t_plus, sampler, steps, noise,
                                                 grid, attack, wireless, result.link_mode)
    payload.update(channel_fields(fading))
    if as_json:
        click.echo(json.dumps(payload))
    elif system in ADAPTIVE_SYSTEMS:
        _print_adaptive(system, payload)
    else:
        _print_result(system, payload)
