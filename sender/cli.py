"""``diffusec-sender``: send images over the link (sync, diffuse, encode, stream) and score the acks."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from link.security_options import link_auth, link_key_option, log_key_state, tls_files, tls_options
from link.metrics import check_option as check_metrics_option
from protos.limits import MAX_PILOT_SYMBOLS, MIN_PILOT_SYMBOLS
from shared.attacks.options import source_attack_options
from shared.cli_options import (COMMAND_CONTEXT, checkpoints_option, data_root_option, device_option, fail, fail_on,
                                image_set_option, json_option, preset_option, seed_option, set_threads,
                                show_progress, threads_option)
from shared.presets import NUM_TIMESTEPS

from .options import SenderOptions

DEFAULTS = SenderOptions()


@click.group(context_settings=COMMAND_CONTEXT)
def main() -> None:
    """DiffuSeC Link sender: the transmitting end of the link (a gRPC client of Link)."""


def link_options(func):
    """The options of how the link runs: sync, window, timeouts, evaluation mode, session (SenderOptions)."""
    for option in reversed((
        click.option("--sync-every", type=click.IntRange(min=0), default=DEFAULTS.sync_every, show_default=True,
                     help="Re-sync after every K frames (0: sync once at the start and after reconnects)."),
        click.option("--pilot-length", type=click.IntRange(MIN_PILOT_SYMBOLS, MAX_PILOT_SYMBOLS),
                     default=DEFAULTS.pilot_length, show_default=True,
                     help="Pilot symbols per sync, sent at the data's power (unit power per real symbol)."),
        click.option("--window", type=click.IntRange(min=1), default=DEFAULTS.window, show_default=True,
                     help="Most unacknowledged frames in flight. Twice the receiver's --max-batch (32) keeps its "
                          "micro-batches full: one batch queues while the other runs."),
        click.option("--batch", type=click.IntRange(min=1), default=DEFAULTS.batch, show_default=True,
                     help="Images diffused and encoded together."),
        click.option("--ack-timeout", type=click.FloatRange(min=0.01), default=DEFAULTS.ack_timeout_s,
                     show_default=True, help="Seconds (at least) before an unacknowledged frame is sent again."),
        click.option("--sync-timeout", type=click.FloatRange(min=0.01), default=DEFAULTS.sync_timeout_s,
                     show_default=True, help="Seconds one Sync may take before it is retried."),
        click.option("--retry-timeout", type=click.FloatRange(min=0), default=DEFAULTS.retry_timeout_s,
                     show_default=True, help="Give up after the peer has been unreachable this many seconds."),
        click.option("--eval/--no-eval", "evaluation", default=DEFAULTS.evaluation, show_default=True,
                     help="Evaluation mode: send labels and get purified images back to score SSIM."),
        click.option("--session", default="", help="Session id (default: a random one)."),
    )):
        func = option(func)
    return func


@main.command()
@click.option("--to", "address", default="127.0.0.1:50052", show_default=True,
              help="host:port of the channel proxy (or of the receiver directly, for a noise-free link).")
@preset_option(help="Model preset; must match the receiver's.")
@click.option("--n", "n", type=click.IntRange(min=1), default=100, show_default=True, help="Number of images to send.")
@click.option("--images", "images_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Send your own folder of PNG/JPEG files (recursive, sorted), centre-cropped and resized to "
                   "the preset. No labels: accuracy is null and the JSON lists the predictions.")
@image_set_option(help="Without --images: the preset's test split (test), the embedded sample (sample), "
                       "or the test split if found, else the sample (auto).")
@data_root_option(help="Folder holding the dataset.")
@checkpoints_option(help="Checkpoint folder with codec.pt (default: $DIFFUSEC_CHECKPOINTS/<preset> or "
                         "checkpoints/<preset>).")
@link_options
@seed_option(help="Seeds the image choice and the diffusion noise.")
@threads_option()
@device_option(help="torch device for the encoder, e.g. cuda.")
@json_option()
@click.option("--metrics", "metrics_address", default=None, callback=check_metrics_option,
              help="host:port to serve Prometheus metrics on while the run lasts (GET /metrics): frames sent, "
                   "acked and resent, Sync seconds, the measured SNR. Default: none.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
@link_key_option()
@tls_options("client")
@source_attack_options
@click.option("--attack-snr-db", type=float, default=15.0, show_default=True,
              help="--adaptive: the channel SNR (dB) the attacker assumes when it differentiates the chain.")
@click.option("--attack-t-d", type=click.IntRange(0, NUM_TIMESTEPS), default=20, show_default=True,
              help="--adaptive: the t_D (and t_P) the attacker assumes.")
def run(address, preset, n, images_dir, image_set, data_root, checkpoints, sync_every, pilot_length, window, batch,
        ack_timeout, sync_timeout, retry_timeout, evaluation, session, seed, threads, device, as_json,
        metrics_address, progress, link_key_file, tls_cert, tls_key, tls_ca, tls_server_name, source_attack, eps, attack_steps, step_size, target, adaptive, eot_samples,
        attack_snr_db, attack_t_d) -> None:
    """Sync with the receiver, then diffuse with its t_D, encode and stream N images; print the scores.

    The JSON has frames_sent, frames_acked, accuracy, ssim (evaluation mode), sync_count, t_d and
    sync_p50_ms (one Sync round trip, milliseconds), among others. Exit status 1 when the link fails.

    With --source-attack the image store is polluted before sending (attack paper's computer-vision
    attack; DiffuSeC paper VI): every image is perturbed within --eps (l_inf, stored 8-bit) against
    the receiver's classifier, loaded white-box from the same checkpoint folder (--adaptive: against
    the whole chain, which also needs the denoiser). The JSON then has source_attack and
    attack_success_rate; SSIM compares what the receiver ends with to the clean originals.
    """
    logging.basicConfig(level=logging.INFO if not as_json else logging.WARNING,
                        format="sender %(levelname)s %(message)s", stream=sys.stderr)
    import torch

    from .report import failure_report, run_report, text_lines

    set_threads(threads)
    auth = link_auth(link_key_file)
    tls = tls_files(tls_cert, tls_key, tls_ca, tls_server_name)
    log_key_state(logging.getLogger("diffusec.sender"), auth is not None)
    attack = _source_attack(preset, source_attack, eps, attack_steps, step_size, target, adaptive, eot_samples)
    # The attacker holds the receiver's classifier (white-box); --adaptive also the denoiser.
    parts = ("codec",) if attack is None else ("codec", "classifier") + (("denoiser",) if adaptive else ())
    pipeline, images, labels, description, names = _load(preset, checkpoints, parts, device, images_dir, image_set,
                                                         data_root, n, seed)
    sent = images
    if attack is not None:
        from shared.attacks.source import pollute

        sent = pollute(attack, pipeline, images, labels, snr_db=attack_snr_db, t_d=attack_t_d, t_plus=0,
                       batch=batch, generator=torch.Generator().manual_seed(seed))
    options = SenderOptions(preset=preset, session=session, sync_every=sync_every, pilot_length=pilot_length,
                            window=window, batch=batch, ack_timeout_s=ack_timeout, sync_timeout_s=sync_timeout,
                            retry_timeout_s=retry_timeout, evaluation=evaluation, seed=seed)
    session, result, error = _send(pipeline, address, options, sent, labels, progress, metrics_address, auth, tls)
    if error is not None:
        if as_json:
            click.echo(json.dumps(failure_report(address, preset, len(images), session, error, result)))
        fail(error, 1)
    report = run_report(address, preset, session, description, evaluation, result, images, labels, attack, names)
    click.echo(json.dumps(report) if as_json else "\n".join(text_lines(report)))


def _source_attack(preset, source_attack, eps, attack_steps, step_size, target, adaptive, eot_samples):
    """The source attack the options ask for (None: none); exit 2 on options that do not fit together."""
    from shared.attacks.options import build_source_attack
    from shared.presets import get_preset

    try:
        attack = build_source_attack(source_attack, eps, attack_steps, step_size, target, adaptive, eot_samples)
    except ValueError as err:
        fail(str(err))
    if target is not None and attack is None:
        fail("--target needs --source-attack fgsm|pgd")
    classes = get_preset(preset).num_classes
    if target is not None and target >= classes:
        fail(f"--target {target} out of range: preset {preset} has {classes} classes")
    return attack


def _load(preset, checkpoints, parts, device, images_dir, image_set, data_root, n, seed):
    """-> (pipeline with ``parts``, uint8 images [N, C, H, W], labels or None, a description, the
    file names for --images or None); exit 2 when a checkpoint or the images cannot be read."""
    from shared.checkpoints import CheckpointError
    from shared.data import load_eval_data
    from shared.data import DataNotFoundError
    from shared.pipeline import Pipeline

    from .images import load_folder

    with fail_on(CheckpointError, DataNotFoundError, FileNotFoundError, ValueError):
        pipeline = Pipeline.load(preset, checkpoints, parts, device)
        if images_dir is not None:
            cfg = pipeline.preset.codec
            images, names = load_folder(images_dir, cfg.image_size, cfg.channels, n)
            return pipeline, images, None, f"{len(names)} images from {images_dir}", names
        data = load_eval_data(preset, data_root, image_set, n, seed)
    return pipeline, data.images, data.labels, data.description, None


def _send(pipeline, address, options, images, labels, progress, metrics_address, auth, tls):
    """One LinkSender run with a progress bar (and the metrics endpoint with ``metrics_address``)
    -> (session id, its LinkResult (what was acked, when it failed), the LinkFailed message or None)."""
    from tqdm import tqdm

    from .link import LinkFailed, LinkSender

    if progress is None:
        progress = show_progress()
    bar = tqdm(total=len(images), desc="sent+acked", unit="img", disable=not progress, dynamic_ncols=True)
    sender = LinkSender(pipeline, address, options, on_ack=bar.update, auth=auth, tls=tls)
    if metrics_address:
        _serve_metrics(metrics_address, sender)
    try:
        return sender.session, sender.run(images, labels), None
    except LinkFailed as err:
        return sender.session, sender.result, str(err)
    finally:
        bar.close()
        sender.close()


def _serve_metrics(address: str, sender) -> None:
    """Serve the sender's metrics for as long as this process runs; exit 2 when the address is unusable."""
    from link.metrics import MetricsAddressError, serve as serve_metrics

    from .metrics import SenderCollector

    try:
        serve_metrics(address, SenderCollector(sender))
    except MetricsAddressError as err:
        sender.close()
        fail(str(err))


if __name__ == "__main__":
    main()
