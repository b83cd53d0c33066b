"""The receiver's domain logic: sync handshake and frame processing, independent of gRPC.

    sync:  pilot [N] -> SNR (dB) -> policy -> new epoch (t_D, t_plus)
    frame: z_hat [L] --C^-1, S^-1--> x_hat --P(x_hat; t_P = frame t_D + epoch t_plus)--> x --H--> class

Frames from any number of streams are micro-batched; one batch may mix timesteps (t_P per image).
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Sequence

import torch

from protos.wire import image_to_bytes
from shared.pipeline import Pipeline
from shared.row_noise import RowNoise

from . import validation
from .batcher import MAX_BATCH, MAX_WAIT_MS, MicroBatcher
from .coherent import CoherentReception
from .errors import LinkError
from .metrics import ReceiverTimings
from .policy import Decision, Policy
from .sessions import Epoch, SessionTable
from .snr import PilotCache, measure_snr_db

log = logging.getLogger("diffusec.receiver")


@dataclass(frozen=True)
class FrameIn:
    """A frame as it came off the wire (not yet validated)."""

    frame_id: int
    session: str
    epoch: int
    t_d: int
    latent: bytes                # float32 LE
    shape: tuple[int, ...]
    dtype: str
    label: int | None            # set in evaluation mode
    return_image: bool = False   # evaluation mode without a label
    pilot: bytes = b""           # float32 LE, as arrived (a coherent receiver asked for it)
    pilot_blocks: int = 0


@dataclass(frozen=True)
class AckOut:
    frame_id: int
    predicted_class: int
    t_p: int
    epoch: int
    t_d: int
    image: bytes = b""           # evaluation mode: purified image, uint8 [C, H, W]
    image_shape: tuple[int, ...] = ()


@dataclass(frozen=True)
class SyncTiming:
    """Microseconds spent in one sync: all of it, the SNR estimate, the policy (+ epoch bookkeeping)."""

    total_us: float
    snr_estimate_us: float
    policy_us: float


@dataclass(frozen=True)
class _Job:
    frame: FrameIn
    z_hat: torch.Tensor          # [L]
    t_p: int


class Receiver:
    """Sync and decode/purify/classify for every session; thread-safe."""

    def __init__(self, pipeline: Pipeline, policy: Policy, *, max_batch: int = MAX_BATCH,
                 max_wait_ms: float = MAX_WAIT_MS, sampler: str = "ddpm", steps: int = 5, seed: int = 0,
                 max_latent_bytes: int = 1 << 20, max_t_p: int = 100,
                 sessions: SessionTable | None = None, batch_thread: bool = True,
                 coherent: CoherentReception | None = None):
        """``max_t_p``: frames whose t_P = t_D + t_plus exceeds it are refused (the agent's range is 1..100).
        ``coherent``: ask frames for pilots and equalise fading (None: the AWGN receiver)."""
        self.pipeline, self.policy = pipeline, policy
        self.preset = pipeline.preset
        self.latent_length = self.preset.codec.channel_symbols
        self.num_timesteps = pipeline.schedule.num_timesteps
        self.sampler, self.steps, self.max_latent_bytes = sampler, steps, max_latent_bytes
        self.max_t_p = max_t_p
        self.coherent = coherent
        self.sessions = sessions or SessionTable()
        self.pilots = PilotCache()
        # Purification noise: one stream per frame, seeded from (seed, frame id), so a frame's noise does
        # not depend on which micro-batch it landed in (shared.row_noise), nor on the session id (random
        # by default): runs repeat. Sessions sending the same ids share noise draws, not images.
        self.seed = seed
        # batch_thread=False: the owner runs the models with run_batches() on its own (main) thread.
        self.batcher: MicroBatcher[_Job, AckOut] = MicroBatcher(self._process, max_batch, max_wait_ms,
                                                                start=batch_thread)
        self.frames_processed = 0
        self.duplicates = 0
        self.frames_received = 0          # validated and admitted (duplicates included)
        self.frames_rejected = 0          # refused with a LinkError
        self.syncs = 0
        self.last_snr_db: float | None = None
        # Observed on every batch and Sync: a few microseconds, so always on; served with --metrics.
        self.timings = ReceiverTimings()
        self._lock = threading.Lock()

    # --- sync handshake (paper IV-C) -------------------------------------------------------
    def sync(self, session: str, sequence: int, pilot: bytes, preset: str = "") -> Epoch:
        """Measure the SNR on the pilot, let the policy choose, open a new epoch of ``session``."""
        return self.sync_timed(session, sequence, pilot, preset)[0]

    def sync_timed(self, session: str, sequence: int, pilot: bytes, preset: str = "") -> tuple[Epoch, SyncTiming]:
        """:meth:`sync`, and where its time went (microseconds)."""
        start = time.perf_counter()
        validation.check_session(session)
        validation.check_preset(preset, self.preset.name)
        received = validation.parse_pilot(pilot)
        t_snr = time.perf_counter()
        snr_db = measure_snr_db(session, sequence, received, self.pilots,
                                self.coherent.sync_snr_db if self.coherent else None)
        t_policy = time.perf_counter()
        epoch = self.sessions.sync(session, snr_db, self.policy)
        end = time.perf_counter()
        self.timings.sync.observe(end - start)
        with self._lock:
            self.syncs += 1
            self.last_snr_db = snr_db
        if log.isEnabledFor(logging.DEBUG):
            log.debug("sync %s seq %d: %.2f dB -> epoch %d t_D=%d t_plus=%d", session, sequence, snr_db,
                      epoch.number, epoch.t_d, epoch.t_plus)
        return epoch, SyncTiming((end - start) * 1e6, (t_policy - t_snr) * 1e6, (end - t_policy) * 1e6)

    def after_sync(self, session: str, sequence: int, pilot_length: int, epoch: Epoch) -> None:
        """Work that can wait until a Sync's reply is on its way (call it from the RPC's callback).

        Regenerates the pilot of the session's next Sync, lets the policy prepare its next decision,
        and (adaptive policies) logs the measured SNR and the chosen (t_D, t_plus) -- the live
        adaptation trace.
        """
        try:
            self.pilots.prefetch(session, sequence + 1, pilot_length)
            prefetch = getattr(self.policy, "prefetch", None)
            if prefetch is not None:
                prefetch(Decision(epoch.t_d, epoch.t_plus))
        except Exception:  # noqa: BLE001 - optimisations only: the next Sync recomputes what is missing
            log.debug("prefetch after sync failed", exc_info=True)
        if self.policy.name != "fixed":
            log.info("sync %s seq %d: SNR %.2f dB -> epoch %d (t_D, t_plus) = (%d, %d) [policy %s]", session, sequence,
                     epoch.snr_db, epoch.number, epoch.t_d, epoch.t_plus, self.policy.name)

    # --- frames ----------------------------------------------------------------------------
    def submit(self, frame: FrameIn) -> tuple[Future, bool]:
        """Validate ``frame`` and queue it -> (future of its AckOut, duplicate?). LinkError if bad."""
        try:
            validation.check_session(frame.session)
            epoch = self.sessions.epoch(frame.session, frame.epoch)
            validation.check_t_d(frame.t_d, epoch.t_plus, self.num_timesteps)
            validation.check_epoch_t_d(frame.t_d, epoch.number, epoch.t_d)
            validation.check_t_p(frame.t_d + epoch.t_plus, self.max_t_p)
            validation.check_label(frame.label, self.preset.num_classes)
            z_hat = validation.parse_latent(frame.latent, frame.shape, frame.dtype, self.latent_length,
                                            self.max_latent_bytes, self.preset.name)
            if self.coherent is not None:
                z_hat = self.coherent.equalise(frame.frame_id, frame.pilot, frame.pilot_blocks, z_hat)
            epoch, future, duplicate = self.sessions.admit(frame.session, frame.epoch, frame.frame_id)
        except LinkError:
            with self._lock:
                self.frames_rejected += 1
            raise
        with self._lock:
            self.frames_received += 1
            self.duplicates += int(duplicate)
        if not duplicate:
            self.batcher.submit(_Job(frame, z_hat, frame.t_d + epoch.t_plus), future)
        return future, duplicate

    @torch.no_grad()
    def _process(self, jobs: Sequence[_Job]) -> list[AckOut]:
        """One micro-batch: decode -> purify (t_P per image) -> classify."""
        start = time.perf_counter()
        device = self.pipeline.device
        z_hat = torch.stack([job.z_hat for job in jobs]).to(device)
        t_p = torch.tensor([job.t_p for job in jobs], dtype=torch.int64)
        x_hat = self.pipeline.decode(z_hat)
        t_decoded = time.perf_counter()
        noise = RowNoise.for_keys([(self.seed, "purify", job.frame.frame_id) for job in jobs])
        pixels = self.pipeline.purify(x_hat, t_p, self.sampler, self.steps, noise)
        t_purified = time.perf_counter()
        predicted = self.pipeline.classify(pixels).argmax(1).cpu()
        t_classified = time.perf_counter()
        # On CPU each stage has finished when its call returns. On CUDA kernels run asynchronously:
        # decode and purify then count little more than their launches, and classify (whose .cpu()
        # waits for everything) the rest.
        for stage, seconds in (("decode", t_decoded - start), ("purify", t_purified - t_decoded),
                               ("classify", t_classified - t_purified)):
            self.timings.stage.labels(stage).observe(seconds)
        self.timings.batch_frames.observe(len(jobs))
        pixels = pixels.cpu()
        acks = []
        for i, job in enumerate(jobs):
            wanted = job.frame.label is not None or job.frame.return_image
            image, shape = image_to_bytes(pixels[i]) if wanted else (b"", [])
            acks.append(AckOut(job.frame.frame_id, int(predicted[i]), job.t_p, job.frame.epoch, job.frame.t_d,
                               image, tuple(shape)))
        with self._lock:
            self.frames_processed += len(jobs)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("batch of %d frames (t_P %d..%d) in %.2f s", len(jobs), int(t_p.min()), int(t_p.max()),
                      time.perf_counter() - start)
        return acks

    def run_batches(self) -> None:
        """Run the micro-batches on the calling thread until :meth:`close` (with ``batch_thread=False``)."""
        self.batcher.run()

    def close(self) -> None:
        self.batcher.close()
