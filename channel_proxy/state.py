"""The proxy's channel state: SNR (constant or scheduled), named impairments, RNG and counters.

Thread-safe; the Link forwarder asks it what to do to each pilot and frame, the ChannelControl
service changes it at run time.
"""
from __future__ import annotations

import math
import random
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from protos.wire import MAX_SYMBOL_AMPLITUDE

from . import impairments as imp
from .adversary import Surrogates


@dataclass
class Counters:
    frames_in: int = 0
    frames_forwarded: int = 0
    frames_dropped: int = 0
    frames_jammed: int = 0
    frames_attacked: int = 0
    syncs_forwarded: int = 0
    acks_returned: int = 0


class ChannelState:
    def __init__(self, snr_db: float = 15.0, seed: int = 0, upstream: str = "", preset: str = "cifar10",
                 checkpoints: str | None = None):
        """``preset`` and ``checkpoints`` locate the ``adversarial`` surrogate (loaded when first added)."""
        self._lock = threading.Lock()
        self.surrogates = Surrogates(preset, checkpoints)
        self._surrogate_of: dict[str, object] = {}   # impairment name -> its loaded Surrogate
        self._attack_ratio_sum = 0.0                 # sum over attacked frames of delta power / noise power
        self._snr_db = imp.check_snr_db(snr_db)
        self._schedule: tuple[list[tuple[float, float]], float, float] | None = None  # points, period, start
        self._impairments: OrderedDict[str, imp.Impairment] = OrderedDict()
        self._rng = np.random.default_rng(seed)      # the wire fast path (apply_bytes)
        self._random = random.Random(seed)
        self.counters = Counters()
        self.upstream = upstream
        self.seed = seed
        self._attack_streams = 0
        self.started = time.monotonic()

    # --- control ------------------------------------------------------------------------------
    def snr_db(self) -> float:
        with self._lock:
            return self._snr_locked()

    def _snr_locked(self) -> float:
        if self._schedule is None:
            return self._snr_db
        points, period_s, start = self._schedule
        return imp.snr_at(points, time.monotonic() - start, period_s)

    def set_snr(self, snr_db: float) -> None:
        """A constant SNR (dB); cancels any schedule. ValueError when out of range."""
        imp.check_snr_db(snr_db)
        with self._lock:
            self._snr_db, self._schedule = snr_db, None

    def schedule_snr(self, points: list[tuple[float, float]], period_s: float = 0.0) -> None:
        """Follow ``points`` [(seconds, dB)] from now (repeating every ``period_s`` if > 0)."""
        points = imp.check_schedule(points, period_s)
        with self._lock:
            self._schedule = (points, period_s, time.monotonic())

    def add(self, name: str, spec: imp.Spec) -> imp.Impairment:
        """Stack a named impairment; KeyError if the name is taken, ValueError if ``spec`` is bad.

        ``adversarial`` loads its surrogate first (outside the lock: frames keep flowing meanwhile);
        CheckpointError (a FileNotFoundError) when the checkpoint folder lacks it.
        """
        imp.check_spec(spec)
        imp.check_name(name)
        surrogate = None
        if isinstance(spec, imp.Adversarial):
            surrogate = self.surrogates.get(spec.surrogate)
            if spec.target is not None and spec.target >= surrogate.num_classes:
                raise ValueError(f"adversarial target {spec.target} is out of range: the surrogate's classifier "
                                 f"has {surrogate.num_classes} classes (0..{surrogate.num_classes - 1})")
        with self._lock:
            name = name or self._free_name(spec.kind)
            if name in self._impairments:
                raise KeyError(f"an impairment named {name!r} exists already; remove it first or pick another --name")
            item = self._impairments[name] = imp.Impairment(name, spec)
            if surrogate is not None:
                self._surrogate_of[name] = surrogate
            return item

    def _free_name(self, kind: str) -> str:
        if kind not in self._impairments:
            return kind
        n = 2
        while f"{kind}-{n}" in self._impairments:
            n += 1
        return f"{kind}-{n}"

    def remove(self, name: str) -> imp.Impairment:
        with self._lock:
            try:
                self._surrogate_of.pop(name, None)
                return self._impairments.pop(name)
            except KeyError:
                names = ", ".join(self._impairments) or "none"
                raise KeyError(f"no impairment named {name[:imp.MAX_NAME_CHARS]!r} (present: {names})") from None

    def clear(self) -> int:
        with self._lock:
            n = len(self._impairments)
            self._impairments.clear()
            self._surrogate_of.clear()
            return n

    def list(self) -> list[imp.Impairment]:
        with self._lock:
            return list(self._impairments.values())

    # --- data path ----------------------------------------------------------------------------
    def _of(self, kind: type) -> list:
        return [i.spec for i in self._impairments.values() if isinstance(i.spec, kind)]

    def apply_bytes(self, data: bytes) -> tuple[bytes, bool]:
        """Float32 LE symbols through AWGN + jamming (one draw at the combined variance) -> (bytes, jammed?).

        Works on the wire format directly (no tensor round trip); :func:`impairments.apply_channel`
        is the same channel term by term.
        """
        symbols = np.frombuffer(data, dtype="<f4")
        with self._lock:
            pnrs = [j.pnr_db for j in self._of(imp.Jamming)]
            std = imp.combined_noise_std(self._snr_locked(), pnrs)
            noise = self._rng.standard_normal(symbols.shape[0], dtype=np.float32)
        noise *= np.float32(std)
        noise += symbols
        return noise.astype("<f4", copy=False).tobytes(), bool(pnrs)

    def attack_generator(self) -> torch.Generator:
        """A generator for one Transmit stream's adversarial perturbations (PGD random starts): seeded
        from ``seed`` and the stream's number, so streams differ and a rerun repeats them."""
        with self._lock:
            self._attack_streams += 1
            return torch.Generator().manual_seed(self.seed * 1_000_003 + self._attack_streams)

    def adversarial_latent_length(self) -> int | None:
        """Symbols per frame the adversarial surrogates expect; None when no ``adversarial`` is on."""
        with self._lock:
            return next((s.latent_length for s in self._surrogate_of.values()), None)

    def attack(self, latents: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor | None:
        """Every ``adversarial`` impairment, in order, on received latents [B, L] -> latents + delta.

        Each crafts its perturbation on the latents as they stand (after AWGN, jamming and any
        earlier adversarial term), at the current SNR; the model work runs outside the lock. None
        when no ``adversarial`` impairment is on. Counts the frames and the achieved PNR.
        """
        from shared.attacks.wireless import latent_perturbation

        with self._lock:
            attacks = [(i.spec, self._surrogate_of[i.name]) for i in self._impairments.values()
                       if isinstance(i.spec, imp.Adversarial) and i.name in self._surrogate_of]
            snr_db = self._snr_locked()
        if not attacks:
            return None
        # Frames that are no channel output (NaN, inf, absurd amplitudes) pass unattacked: the
        # receiver refuses them with its own reason, and they must not poison the PNR statistics.
        valid = (torch.isfinite(latents) & (latents.abs() <= MAX_SYMBOL_AMPLITUDE)).all(dim=1)
        if not bool(valid.any()):
            return latents
        clean = latents[valid]
        out = clean
        for spec, surrogate in attacks:
            out = out + latent_perturbation(out, decode=surrogate.decode, classify=surrogate.classify, snr_db=snr_db,
                                            pnr_db=spec.pnr_db, method=spec.method, steps=spec.steps,
                                            target=spec.target, generator=generator)
        # The PNR achieved: the perturbation actually added vs the AWGN variance 10^(-SNR/10).
        ratios = (out - clean).double().pow(2).mean(dim=1) / 10.0 ** (-snr_db / 10.0)
        counted = torch.isfinite(ratios)
        with self._lock:
            self.counters.frames_attacked += int(counted.sum())
            self._attack_ratio_sum += float(ratios[counted].sum())
        attacked = latents.clone()
        attacked[valid] = out
        return attacked

    def frame_fate(self) -> tuple[bool, float]:
        """(dropped?, forwarding delay in s) for one frame: each ``drop`` and ``delay`` applies."""
        with self._lock:
            dropped = any(imp.is_dropped(d.rate, self._random.random()) for d in self._of(imp.Drop))
            return dropped, self._delay_locked()

    def sync_delay(self) -> float:
        with self._lock:
            return self._delay_locked()

    def _delay_locked(self) -> float:
        return sum(imp.delay_s(d.ms, d.jitter_ms, self._random.random()) for d in self._of(imp.Delay))

    def count(self, **increments: int) -> None:
        with self._lock:
            for key, value in increments.items():
                setattr(self.counters, key, getattr(self.counters, key) + value)

    def stats(self) -> dict:
        """Counters, SNRs and ``attack_pnr_db`` (10 log10 of the mean attacked-frame PNR; None before any)."""
        with self._lock:
            snr = self._snr_locked()
            attacked = self.counters.frames_attacked
            mean_ratio = self._attack_ratio_sum / attacked if attacked else None
            return {**vars(self.counters), "snr_db": snr,
                    "attack_pnr_db": 10.0 * math.log10(mean_ratio) if mean_ratio else None,
                    "effective_snr_db": imp.effective_snr_db(snr, [j.pnr_db for j in self._of(imp.Jamming)]),
                    "snr_scheduled": self._schedule is not None, "impairments": len(self._impairments),
                    "uptime_s": time.monotonic() - self.started, "upstream": self.upstream}
