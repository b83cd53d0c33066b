"""``diffusec-receiver``: the receiving end of the link (decode, purify, classify) as a gRPC service."""
from __future__ import annotations

import logging
import signal
import sys
import threading

import click

from link.metrics import check_option as check_metrics_option
from link.security_options import link_auth, link_key_option, log_key_state, tls_files, tls_options
from shared.cli_options import (COMMAND_CONTEXT, checkpoints_option, device_option, fail, preset_option, sampler_option,
                                seed_option, set_threads, steps_option, t_d_option, t_plus_option, threads_option)

from .batcher import MAX_BATCH, MAX_WAIT_MS
from .policy import EPISODE_CHANGE_DB, EPISODE_STEPS, POLICIES


@click.group(context_settings=COMMAND_CONTEXT)
def main() -> None:
    """DiffuSeC Link receiver: serves the Link gRPC service (Sync + Transmit) and gRPC health.

    Each Sync measures the SNR on the sender's pilot and opens a sync epoch whose (t_D, t_plus)
    the policy chooses; each frame is decoded, purified from t_P = frame's t_D + epoch's t_plus,
    and classified. Concurrent frames share micro-batches.
    """


def _log_off_the_request_path(level: str) -> None:
    """Log through a queue: handlers enqueue, one listener thread formats and writes to stderr.

    The ddpg/table policies log every Sync (the live adaptation trace); writing that line to a pipe
    on the Sync's own thread cost ~0.2 ms of its ~3 ms round trip here.
    """
    import atexit
    import queue
    from logging.handlers import QueueHandler, QueueListener

    records: queue.SimpleQueue = queue.SimpleQueue()
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(logging.Formatter("receiver %(levelname)s %(message)s"))
    listener = QueueListener(records, stream)
    listener.start()
    atexit.register(listener.stop)  # flushes what is queued
    root = logging.getLogger()
    root.handlers[:] = [QueueHandler(records)]
    root.setLevel(level.upper())


def _coherent(equaliser: str, pilot_symbols: int, pilot_blocks: int):
    """The CoherentReception of the options; None for --equaliser none (the AWGN receiver)."""
    from .coherent import CoherentReception

    return None if equaliser == "none" else CoherentReception(equaliser, pilot_symbols, pilot_blocks)


@main.command()
@click.option("--listen", default="127.0.0.1:50051", show_default=True, help="host:port to serve Link on.")
@preset_option(help="Model preset; the sender must use the same one.")
@checkpoints_option()
@click.option("--policy", type=click.Choice(POLICIES), default="fixed", show_default=True,
              help="How each Sync chooses (t_D, t_plus) from the measured SNR: fixed; ddpg (the trained "
                   "agent, `diffusec train agent`); table (the agent grid's best per SNR, an oracle baseline).")
@t_d_option(help="fixed policy: diffusing timesteps t_D the sender must use; ddpg: a session's initial t_D.")
@t_plus_option(help="fixed policy: extra denoising steps (t_P = t_D + t_plus); ddpg: a session's initial t_plus.")
@click.option("--episode-steps", type=click.IntRange(min=0), default=EPISODE_STEPS, show_default=True,
              help="ddpg: actor decisions per channel state (its training horizon, paper VI-B), then the choice "
                   "holds until the SNR moves; 0 = a decision at every Sync.")
@click.option("--episode-change-db", type=click.FloatRange(min=0, min_open=True), default=EPISODE_CHANGE_DB,
              show_default=True, help="ddpg: a new episode starts when the measured SNR is this many dB away from "
                                      "the SNR the current one started at.")
@sampler_option(help="ddpm: full reverse chain (t_P network calls); ddim: strided, --steps calls.")
@steps_option(help="Network calls for ddim.")
@click.option("--max-batch", type=click.IntRange(min=1), default=MAX_BATCH, show_default=True,
              help="Most frames per micro-batch. Senders keep the batches full with a --window of at least "
                   "twice this (the sender's default is 64).")
@click.option("--batch-wait-ms", type=click.FloatRange(min=0), default=MAX_WAIT_MS, show_default=True,
              help="A micro-batch closes when it is full or when no new frame has arrived for this long "
                   "(each arrival restarts the wait, so a burst waits up to max-batch x this).")
@click.option("--max-latent-bytes", type=click.IntRange(min=1), default=1 << 20, show_default=True,
              help="Refuse larger latents with INVALID_ARGUMENT.")
@click.option("--max-t-p", type=click.IntRange(min=1), default=100, show_default=True,
              help="Refuse frames whose t_P = t_D + t_plus exceeds this (OUT_OF_RANGE): the reverse chain costs "
                   "t_P network calls per frame. The default is the agent's range (t_D, t_plus <= 50).")
@click.option("--equaliser", type=click.Choice(["none", "zf", "mmse"]), default="none", show_default=True,
              help="none: the AWGN receiver. zf or mmse: a coherent receiver for fading channels (`diffusec-proxy "
                   "channel set rayleigh`): it asks every frame for a pilot, equalises each block with its LS "
                   "estimate, and measures the average SNR with one gain fitted per 16 complex pilot symbols.")
@click.option("--frame-pilot-symbols", type=click.IntRange(2, 1024), default=8, show_default=True,
              help="Coherent receiver: complex pilot symbols per block in every frame.")
@click.option("--frame-pilot-blocks", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Coherent receiver: pilot blocks per frame, block k for the latent's k-th equal share.")
@link_key_option()
@tls_options("server")
@seed_option(help="Seeds the purification noise.")
@threads_option()
@device_option()
@click.option("--log-level", type=click.Choice(["debug", "info", "warning"]), default="info", show_default=True)
@click.option("--metrics", "metrics_address", default=None, callback=check_metrics_option,
              help="host:port to serve Prometheus metrics on (GET /metrics): frames received, acked, duplicate "
                   "and rejected, stage and Sync seconds, the measured SNR. Default: none.")
def serve(listen, preset, checkpoints, policy, t_d, t_plus, episode_steps, episode_change_db, sampler, steps, max_batch,
          batch_wait_ms, max_latent_bytes, max_t_p, equaliser, frame_pilot_symbols, frame_pilot_blocks, link_key_file,
          tls_cert, tls_key, tls_ca, seed, threads, device, log_level, metrics_address) -> None:
    """Load the models and serve Link and health on LISTEN until SIGINT/SIGTERM."""
    _log_off_the_request_path(log_level)
    from shared.checkpoints import CheckpointError
    from shared.pipeline import Pipeline

    from .engine import Receiver
    from .guard import LinkGuard
    from .policy import make_policy
    from .service import build_server

    set_threads(threads)
    if policy == "fixed" and t_d + t_plus > max_t_p:
        fail(f"--t-d {t_d} + --t-plus {t_plus} exceeds --max-t-p {max_t_p}: every frame would be refused")
    guard = LinkGuard(link_auth(link_key_file))
    tls = tls_files(tls_cert, tls_key, tls_ca)
    try:
        pipeline = Pipeline.load(preset, checkpoints, ("codec", "denoiser", "classifier"), device)
        chosen = make_policy(policy, t_d, t_plus, pipeline.schedule.num_timesteps, checkpoints, preset,
                             episode_steps, episode_change_db)
    except (CheckpointError, ValueError) as err:
        fail(str(err))
    receiver = Receiver(pipeline, chosen, max_batch=max_batch, max_wait_ms=batch_wait_ms, sampler=sampler,
                        steps=steps, seed=seed, max_latent_bytes=max_latent_bytes, max_t_p=max_t_p,
                        batch_thread=False, coherent=_coherent(equaliser, frame_pilot_symbols, frame_pilot_blocks))
    try:
        server, port = build_server(receiver, listen, guard=guard, tls=tls)
    except (OSError, RuntimeError, ValueError) as err:   # TlsError is a ValueError
        fail(f"cannot serve on {listen}: {err}")
    if metrics_address:
        _serve_metrics(metrics_address, receiver, server)

    def shut_down() -> None:
        # Let in-flight calls finish (their frames still need the batch loop), then end the loop.
        server.stop(grace=2.0).wait()
        receiver.close()

    stopping = threading.Event()

    def on_signal(*_) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=shut_down, name="shutdown", daemon=True).start()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    logging.getLogger("diffusec.receiver").info(
        "serving Link on %s (port %d): preset %s, %d symbols/frame, policy %s, %s sampler, max batch %d",
        listen, port, preset, receiver.latent_length, getattr(chosen, "describe", lambda: policy)(), sampler, max_batch)
    log_key_state(logging.getLogger("diffusec.receiver"), guard.keyed)
    logging.getLogger("diffusec.receiver").info("TLS: %s", ("mutual (client certificates required)" if tls.ca else "on")
                                                if tls.enabled else "off (plaintext)")
    # The models run here, on the main thread, which owns torch's thread pool (see receiver.batcher).
    receiver.run_batches()
    logging.getLogger("diffusec.receiver").info("stopped after %d frames (%d duplicates, %d batches)",
                                                receiver.frames_processed, receiver.duplicates,
                                                receiver.batcher.batches)


def _serve_metrics(address: str, receiver, server) -> None:
    """Start the metrics endpoint; on a bad address stop the gRPC server and exit 2 with the reason."""
    from link.metrics import MetricsAddressError, serve as serve_metrics

    from .metrics import ReceiverCollector

    try:
        _, port = serve_metrics(address, ReceiverCollector(receiver))
    except MetricsAddressError as err:
        server.stop(grace=None)
        fail(str(err))
    logging.getLogger("diffusec.receiver").info("Prometheus metrics on %s (port %d)", address, port)


if __name__ == "__main__":
    main()
