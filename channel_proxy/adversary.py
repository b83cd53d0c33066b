"""The proxy's ``adversarial`` impairment at work: surrogate models, the attack on a batch of latents,
and the attack stage of a Transmit stream (the parameters are :mod:`channel_proxy.impairments.kinds.adversarial`).

Threat model (the attack paper's wireless attack, white-box): the attacker holds a copy of the
receiver's decoder and semantic classifier (the "surrogate", loaded from a checkpoint folder) and
sees the latent as it arrives at the receiver, z_hat = z + n (after AWGN and any jamming). It adds
delta = ``shared.attacks.wireless.latent_perturbation(z_hat, ...)``, so the receiver decodes
z + n + delta. Pilots are never touched: see :mod:`channel_proxy.service`.

Models load lazily, the first time an ``adversarial`` impairment is added, so a proxy without the
checkpoints serves every other impairment; a missing checkpoint is a clear error of that one call.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from protos.wire import MAX_SYMBOL_AMPLITUDE, bytes_to_symbols, symbols_to_bytes

log = logging.getLogger("diffusec.proxy")

# The most frames one attack batch holds (frames that queued while the previous batch ran).
MAX_ATTACK_BATCH = 64


@dataclass(frozen=True)
class Surrogate:
    """The attacker's copy of the receiver's decoder + classifier, differentiable w.r.t. the latent."""

    folder: Path
    preset: str
    decode: Callable[[torch.Tensor], torch.Tensor]     # [B, L] -> model-space [B, C, H, W]
    classify: Callable[[torch.Tensor], torch.Tensor]   # [0, 1] pixels -> logits [B, K]
    latent_length: int                                 # L, real symbols per frame
    num_classes: int


class Surrogates:
    """Surrogate models by checkpoint folder, loaded on first use and kept (thread-safe).

    ``checkpoints`` is the proxy's --checkpoints (None: ``$DIFFUSEC_CHECKPOINTS/<preset>`` or
    ``checkpoints/<preset>``, the receiver's rule); an impairment's own ``surrogate`` folder wins.
    """

    def __init__(self, preset: str = "cifar10", checkpoints: str | Path | None = None):
        self.preset = preset
        self.checkpoints = Path(checkpoints) if checkpoints else None
        self._loaded: dict[Path, Surrogate] = {}
        self._lock = threading.Lock()

    def folder(self, surrogate: str = "") -> Path:
        from shared.checkpoints import default_checkpoint_dir

        if surrogate:
            return Path(surrogate).expanduser().resolve()
        return (self.checkpoints or default_checkpoint_dir(self.preset)).expanduser().resolve()

    def get(self, surrogate: str = "") -> Surrogate:
        """The surrogate of folder ``surrogate`` ("" = the default); CheckpointError when it cannot load."""
        from shared.attacks.wireless import surrogate as differentiable
        from shared.checkpoints import CheckpointError
        from shared.pipeline import Pipeline

        folder = self.folder(surrogate)
        with self._lock:  # one load per folder, even when two adds race; the data path never takes it
            if folder not in self._loaded:
                try:
                    pipeline = Pipeline.load(self.preset, folder, ("codec", "classifier"))
                except (CheckpointError, RuntimeError, OSError) as err:  # missing, or weights of another model
                    raise CheckpointError(
                        f"cannot load the adversarial surrogate (preset {self.preset}) from {folder}: {err} "
                        f"Give `attack add adversarial --surrogate DIR`, or start the proxy with the receiver's "
                        f"--preset and --checkpoints.") from err
                decode, classify = differentiable(pipeline)
                self._loaded[folder] = Surrogate(folder, self.preset, decode, classify,
                                                 pipeline.preset.codec.channel_symbols, pipeline.preset.num_classes)
                log.info("adversarial surrogate loaded from %s (preset %s)", folder, self.preset)
            return self._loaded[folder]


@dataclass(frozen=True)
class LatentAttack:
    """One ``adversarial`` impairment, ready: its loaded surrogate and its attack parameters."""

    surrogate: Surrogate
    pnr_db: float                      # dB above the AWGN power, exactly, per frame
    method: str                        # "fgm" or "pgd"
    steps: int                         # PGD iterations
    target: int | None                 # a class to push towards; None: non-targeted

    @property
    def latent_length(self) -> int:
        return self.surrogate.latent_length

    def perturbation(self, latents: torch.Tensor, snr_db: float, generator: torch.Generator | None) -> torch.Tensor:
        """delta [B, L] for received latents [B, L] at ``snr_db``, of power 10^((pnr_db - snr_db)/10) per symbol."""
        from shared.attacks.wireless import latent_perturbation

        return latent_perturbation(latents, decode=self.surrogate.decode, classify=self.surrogate.classify,
                                   snr_db=snr_db, pnr_db=self.pnr_db, method=self.method, steps=self.steps,
                                   target=self.target, generator=generator)


def attack_batch(latents: torch.Tensor, attacks: list[LatentAttack], snr_db: float,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Every attack in order on received latents [B, L] -> (latents + delta [B, L], achieved PNRs).

    Each attack crafts its perturbation on the latents as they stand (after AWGN, jamming and any
    earlier attack). The PNRs are linear ratios, perturbation power over the AWGN variance
    10^(-SNR/10), one per attacked frame that gave a finite one.
    """
    # Frames that are no channel output (NaN, inf, absurd amplitudes) pass unattacked: the
    # receiver refuses them with its own reason, and they must not poison the PNR statistics.
    valid = (torch.isfinite(latents) & (latents.abs() <= MAX_SYMBOL_AMPLITUDE)).all(dim=1)
    if not bool(valid.any()):
        return latents, torch.zeros(0, dtype=torch.float64)
    clean = latents[valid]
    out = clean
    for attack in attacks:
        out = out + attack.perturbation(out, snr_db, generator)
    ratios = (out - clean).double().pow(2).mean(dim=1) / 10.0 ** (-snr_db / 10.0)
    attacked = latents.clone()
    attacked[valid] = out
    return attacked, ratios[torch.isfinite(ratios)]


class AttackStage:
    """Between a stream's reader and its delay line while an ``adversarial`` impairment is on.

    The reader hands over frames that have been through AWGN and jamming; one worker thread takes
    every frame that has queued (up to ``MAX_ATTACK_BATCH``), perturbs them as one batch with
    ``attack`` ([B, L] float32 -> [B, L]), and puts them in the delay line with their delay. Frames
    whose latent is malformed or not L symbols long pass unchanged (the receiver judges them).
    """

    def __init__(self, attack: Callable[[torch.Tensor], torch.Tensor | None], put: Callable[[object, float], None],
                 latent_length: Callable[[], int | None]):
        self._attack, self._put, self._latent_length = attack, put, latent_length
        self._queue: queue.Queue = queue.Queue()
        self._warned = False
        self._worker = threading.Thread(target=self._run, name="proxy-attack", daemon=True)
        self._worker.start()

    def put(self, frame, delay_s: float) -> None:
        self._queue.put((frame, delay_s))

    def close(self, timeout_s: float = 60.0) -> None:
        """Attack and forward what is queued, then stop the worker."""
        self._queue.put(None)
        self._worker.join(timeout_s)

    def _run(self) -> None:
        done = False
        while not done:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < MAX_ATTACK_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    done = True
                    break
                batch.append(item)
            try:
                self._perturb([frame for frame, _ in batch])
            except Exception:
                log.exception("adversarial perturbation failed; %d frame(s) forwarded without it", len(batch))
            for frame, delay_s in batch:
                self._put(frame, delay_s)

    def _perturb(self, frames: list) -> None:
        length = self._latent_length()
        if length is None:  # the impairment was removed meanwhile
            return
        chosen = [f for f in frames if len(f.latent) == 4 * length]
        if len(chosen) < len(frames) and not self._warned:
            self._warned = True
            log.warning("frames of %s bytes pass unattacked: the surrogate expects %d float32 symbols",
                        sorted({len(f.latent) for f in frames if len(f.latent) != 4 * length}), length)
        if not chosen:
            return
        out = self._attack(torch.stack([bytes_to_symbols(f.latent) for f in chosen]))
        if out is None:
            return
        for frame, row in zip(chosen, out):
            frame.latent = symbols_to_bytes(row)
