"""``diffusec-sender``: send images over the link (sync, diffuse, encode, stream) and score the acks."""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from link.metrics import check_option as check_metrics_option
from shared.attacks.options import source_attack_options
from shared.devices import DEVICE
from protos.limits import MAX_PILOT_SYMBOLS, MIN_PILOT_SYMBOLS
from shared.presets import DEFAULT_PRESET, NUM_TIMESTEPS, PRESETS

from .options import SenderOptions

DEFAULTS = SenderOptions()


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def main() -> None:
    """DiffuSeC Link sender: the transmitting end of the link (a gRPC client of Link)."""


@main.command()
@click.option("--to", "address", default="127.0.0.1:50052", show_default=True,
              help="host:port of the channel proxy (or of the receiver directly, for a noise-free link).")
@click.option("--preset", type=click.Choice(list(PRESETS)), default=DEFAULT_PRESET, show_default=True,
              help="Model preset; must match the receiver's.")
@click.option("--n", "n", type=click.IntRange(min=1), default=100, show_default=True, help="Number of images to send.")
@click.option("--images", "images_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Send your own folder of PNG/JPEG files (recursive, sorted), centre-cropped and resized to "
                   "the preset. No labels: accuracy is null and the JSON lists the predictions.")
@click.option("--data", "source", type=click.Choice(["auto", "test", "sample"]), default="auto", show_default=True,
              help="Without --images: the preset's test split (test), the embedded sample (sample), "
                   "or the test split if found, else the sample (auto).")
@click.option("--data-root", type=click.Path(file_okay=False, exists=True), default=None, help="Folder holding the dataset.")
@click.option("--checkpoints", type=click.Path(file_okay=False), default=None,
              help="Checkpoint folder with codec.pt (default: $DIFFUSEC_CHECKPOINTS/<preset> or checkpoints/<preset>).")
@click.option("--sync-every", type=click.IntRange(min=0), default=DEFAULTS.sync_every, show_default=True,
              help="Re-sync after every K frames (0: sync once at the start and after reconnects).")
@click.option("--pilot-length", type=click.IntRange(MIN_PILOT_SYMBOLS, MAX_PILOT_SYMBOLS), default=DEFAULTS.pilot_length,
              show_default=True,
              help="Pilot symbols per sync, sent at the data's power (unit power per real symbol).")
@click.option("--window", type=click.IntRange(min=1), default=DEFAULTS.window, show_default=True,
              help="Most unacknowledged frames in flight. Twice the receiver's --max-batch (32) keeps its "
                   "micro-batches full: one batch queues while the other runs.")
@click.option("--batch", type=click.IntRange(min=1), default=DEFAULTS.batch, show_default=True,
              help="Images diffused and encoded together.")
@click.option("--ack-timeout", type=click.FloatRange(min=0.01), default=DEFAULTS.ack_timeout_s, show_default=True,
              help="Seconds (at least) before an unacknowledged frame is sent again.")
@click.option("--sync-timeout", type=click.FloatRange(min=0.01), default=DEFAULTS.sync_timeout_s, show_default=True,
              help="Seconds one Sync may take before it is retried.")
@click.option("--retry-timeout", type=click.FloatRange(min=0), default=DEFAULTS.retry_timeout_s, show_default=True,
              help="Give up after the peer has been unreachable this many seconds.")
@click.option("--eval/--no-eval", "evaluation", default=DEFAULTS.evaluation, show_default=True,
              help="Evaluation mode: send labels and get purified images back to score SSIM.")
@click.option("--session", default="", help="Session id (default: a random one).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the image choice and the diffusion noise.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch threads (default: all cores).")
@click.option("--device", type=DEVICE, default="cpu", show_default=True, help="torch device for the encoder, e.g. cuda.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object as the last stdout line.")
@click.option("--metrics", "metrics_address", default=None, callback=check_metrics_option,
              help="host:port to serve Prometheus metrics on while the run lasts (GET /metrics): frames sent, "
                   "acked and resent, Sync seconds, the measured SNR. Default: none.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
@source_attack_options
@click.option("--attack-snr-db", type=float, default=15.0, show_default=True,
              help="--adaptive: the channel SNR (dB) the attacker assumes when it differentiates the chain.")
@click.option("--attack-t-d", type=click.IntRange(0, NUM_TIMESTEPS), default=20, show_default=True,
              help="--adaptive: the t_D (and t_P) the attacker assumes.")
def run(address, preset, n, images_dir, source, data_root, checkpoints, sync_every, pilot_length, window, batch,
        ack_timeout, sync_timeout, retry_timeout, evaluation, session, seed, threads, device, as_json, metrics_address,
        progress,
        source_attack, eps, attack_steps, step_size, target, adaptive, eot_samples, attack_snr_db, attack_t_d) -> None:
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
    from tqdm import tqdm

    from shared.checkpoints import CheckpointError
    from shared.data import load_eval_data
    from shared.data import DataNotFoundError
    from shared.pipeline import Pipeline
    from shared.presets import get_preset

    from .images import load_folder
    from .link import LinkFailed, LinkSender, SenderOptions
    from .report import summarize

    from shared.attacks.options import build_source_attack

    if threads:
        torch.set_num_threads(threads)
    cfg = get_preset(preset).codec
    names = None
    try:
        attack = build_source_attack(source_attack, eps, attack_steps, step_size, target, adaptive, eot_samples)
    except ValueError as err:
        _fail(str(err))
    if target is not None and attack is None:
        _fail("--target needs --source-attack fgsm|pgd")
    if target is not None and target >= get_preset(preset).num_classes:
        _fail(f"--target {target} out of range: preset {preset} has {get_preset(preset).num_classes} classes")
    # The attacker holds the receiver's classifier (white-box); --adaptive also the denoiser.
    parts = ("codec",) if attack is None else ("codec", "classifier") + (("denoiser",) if adaptive else ())
    try:
        pipeline = Pipeline.load(preset, checkpoints, parts, device)
        if images_dir is not None:
            images, names = load_folder(images_dir, cfg.image_size, cfg.channels, n)
            labels, description = None, f"{len(names)} images from {images_dir}"
        else:
            data = load_eval_data(preset, data_root, source, n, seed)
            images, labels, description = data.images, data.labels, data.description
    except (CheckpointError, DataNotFoundError, FileNotFoundError, ValueError) as err:
        _fail(str(err))
    if progress is None:
        progress = sys.stderr.isatty() and not os.environ.get("DIFFUSEC_NO_PROGRESS")
    sent = images
    if attack is not None:
        from shared.attacks.source import pollute

        sent = pollute(attack, pipeline, images, labels, snr_db=attack_snr_db, t_d=attack_t_d, t_plus=0,
                       batch=batch, generator=torch.Generator().manual_seed(seed))
    bar = tqdm(total=len(images), desc="sent+acked", unit="img", disable=not progress, dynamic_ncols=True)
    options = SenderOptions(preset=preset, session=session, sync_every=sync_every, pilot_length=pilot_length,
                            window=window, batch=batch, ack_timeout_s=ack_timeout, sync_timeout_s=sync_timeout,
                            retry_timeout_s=retry_timeout,
                            evaluation=evaluation, seed=seed)
    sender = LinkSender(pipeline, address, options, on_ack=bar.update)
    if metrics_address:
        _serve_metrics(metrics_address, sender)
    error = None
    try:
        result = sender.run(sent, labels)
    except LinkFailed as err:
        error, result = str(err), None
    finally:
        bar.close()
        sender.close()
    if result is None:
        payload = {"to": address, "preset": preset, "n": len(images), "session": sender.session, "error": error,
                   "frames_sent": 0, "frames_acked": 0}
        if as_json:
            click.echo(json.dumps(payload))
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    payload = {"to": address, "preset": preset, "n": len(images), "session": sender.session, "data": description,
               "evaluation": evaluation, **summarize(result, images, labels)}
    if attack is not None:
        payload.update(_attack_report(attack, result, labels))
    if names is not None:
        payload["predictions"] = [{"file": name, "class": ack.predicted_class if ack else None}
                                  for name, ack in zip(names, result.acks)]
    if as_json:
        click.echo(json.dumps(payload))
        return
    click.echo(f"sent {payload['frames_sent']} frames of {description} to {address}")
    for key in ("frames_acked", "frames_resent", "reconnects", "accuracy", "ssim", "sync_count", "t_d", "t_plus",
                "snr_db", "sync_p50_ms", "ack_latency_p50_ms", "images_per_s", "wall_time_s"):
        if payload[key] is not None:
            click.echo(f"  {key:20s} {payload[key]}")
    if attack is not None:
        click.echo(f"  {'attack_success_rate':20s} {payload['attack_success_rate']}")
        click.echo(f"  {'source_attack':20s} {json.dumps(payload['source_attack'])}")
    for item in payload.get("predictions", ()):
        click.echo(f"  {item['file']}: class {item['class']}")


def _serve_metrics(address: str, sender) -> None:
    """Serve the sender's metrics for as long as this process runs; exit 2 when the address is unusable."""
    from link.metrics import MetricsAddressError, serve as serve_metrics

    from .metrics import SenderCollector

    try:
        serve_metrics(address, SenderCollector(sender))
    except MetricsAddressError as err:
        sender.close()
        _fail(str(err))


def _attack_report(attack, result, labels) -> dict:
    """source_attack (parameters) and attack_success_rate over the acked frames (None without labels
    for a non-targeted attack: success means "misclassified")."""
    import torch

    from shared.attacks.chain import success_counts
    from shared.attacks.source import describe

    acked = [(i, a.predicted_class) for i, a in enumerate(result.acks) if a is not None]
    rate = None
    if acked and (labels is not None or attack.target is not None):
        predicted = torch.tensor([c for _, c in acked])
        truth = labels[[i for i, _ in acked]] if labels is not None else torch.full_like(predicted, -1)
        wins, eligible = success_counts(predicted, truth, attack.target)
        rate = round(wins / eligible, 4) if eligible else None
    described = describe(attack, "plain")
    described["stored"] = "uint8 (8-bit image files)"
    return {"source_attack": described, "attack_success_rate": rate}


if __name__ == "__main__":
    main()
