"""The proxy's channel state: SNR (constant or scheduled), named impairments, RNGs and counters.

Thread-safe. The Link forwarder passes each frame through :meth:`ChannelState.forward` and each
pilot through :meth:`ChannelState.add_noise`; the ChannelControl service changes the state at run
time. Impairments act through the hooks of their kind (:mod:`channel_proxy.impairments.base`), in
the order they were added; this module knows no kind by name.
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

from protos.wire import array_to_bytes, bytes_to_array, is_symbol_bytes

from . import noise, snr
from protos.diffusec.link.v1 import link_pb2
from shared.bounded import remember
from shared.pilot_aided import fade_frame
from shared.presets import get_preset
from shared.row_noise import stream_seed

from .adversary import LatentAttack, Surrogates, attack_batch
from .impairments import MAX_NAME_CHARS, Impairment, ImpairmentSpec, check_name
from .tamper import MessageTamper


MAX_TRACKED_FRAMES = 1 << 16   # (session, frame id) transmission counts kept, oldest dropped first


@dataclass
class Counters:
    frames_in: int = 0
    frames_forwarded: int = 0
    frames_dropped: int = 0
    frames_jammed: int = 0
    frames_attacked: int = 0
    frames_faded: int = 0
    syncs_forwarded: int = 0
    acks_returned: int = 0
    syncs_tampered: int = 0
    frames_tampered: int = 0
    acks_forged: int = 0


@dataclass(frozen=True)
class FrameFate:
    """What the channel does to one frame: lost, or forwarded after ``delay_s`` seconds with ``latent``
    (float32 bytes after any fading, AWGN and extra noise) and ``pilot`` (the frame's, the same way),
    and perturbed first when ``attack`` (a latent
    attack is on: the Transmit stream's :class:`channel_proxy.adversary.AttackStage` does it)."""

    dropped: bool
    delay_s: float
    latent: bytes
    attack: bool
    pilot: bytes = b""


class ChannelState:
    def __init__(self, snr_db: float = 15.0, seed: int = 0, upstream: str = "", preset: str = "cifar10",
                 checkpoints: str | None = None):
        """``preset`` and ``checkpoints`` locate the surrogate models of latent attacks (loaded when first added)."""
        self._lock = threading.Lock()
        self.surrogates = Surrogates(preset, checkpoints)
        self._attacks: dict[str, LatentAttack] = {}  # impairment name -> its latent attack, models loaded
        self._tampers: dict[str, MessageTamper] = {}  # impairment name -> its rewriter of control messages
        self.num_classes = get_preset(preset).num_classes
        self._attack_ratio_sum = 0.0                 # sum over attacked frames of delta power / noise power
        self._snr_db = snr.check_snr_db(snr_db)
        self._schedule: tuple[list[tuple[float, float]], float, float] | None = None  # points, period, start
        # The fading model's schedule: [(seconds, fading spec or None for AWGN)], period, start; None: the
        # fading impairment (if any) decides.
        self._fading_schedule: tuple[list[tuple[float, ImpairmentSpec | None]], float, float] | None = None
        self._impairments: OrderedDict[str, Impairment] = OrderedDict()
        # The channel noise: one stream per message, seeded from (seed, its key): a frame's noise does
        # not depend on what else crossed the channel before it (runs repeat).
        self._transmissions: OrderedDict[tuple, int] = OrderedDict()   # (session, frame id) -> times forwarded
        self._random = random.Random(seed)           # frame drops and delays
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
        return snr.snr_at(points, time.monotonic() - start, period_s)

    def set_snr(self, snr_db: float) -> None:
        """A constant SNR (dB); cancels any schedule. ValueError when out of range."""
        snr.check_snr_db(snr_db)
        with self._lock:
            self._snr_db, self._schedule = snr_db, None

    def schedule_snr(self, points: list[tuple[float, float]], period_s: float = 0.0) -> None:
        """Follow ``points`` [(seconds, dB)] from now (repeating every ``period_s`` if > 0)."""
        points = snr.check_schedule(points, period_s)
        with self._lock:
            self._schedule = (points, period_s, time.monotonic())

    def add(self, name: str, spec: ImpairmentSpec) -> Impairment:
        """Stack a named impairment; KeyError if the name is taken, ValueError if ``spec`` is bad.

        A kind that attacks latents loads its models first (outside the lock: frames keep flowing
        meanwhile); CheckpointError (a FileNotFoundError) when the checkpoint folder lacks them.
        """
        spec.check()
        check_name(name)
        attack = spec.latent_attack(self.surrogates)
        tamper = spec.message_tamper(self.num_classes)
        with self._lock:
            name = name or self._free_name(spec.kind)
            if name in self._impairments:
                raise KeyError(f"an impairment named {name!r} exists already; remove it first or pick another --name")
            fading = self._fading_name_locked()
            if spec.fades() and fading is not None:
                raise ValueError(f"the channel fades already ({fading!r}); one fading model at a time: remove it first, "
                                 f"or use `diffusec-proxy channel set`")
            if spec.fades():
                self._fading_schedule = None   # an explicit fading model replaces a schedule
            item = self._impairments[name] = Impairment(name, spec)
            if attack is not None:
                self._attacks[name] = attack
            if tamper is not None:
                self._tampers[name] = tamper
            return item

    def _free_name(self, kind: str) -> str:
        if kind not in self._impairments:
            return kind
        n = 2
        while f"{kind}-{n}" in self._impairments:
            n += 1
        return f"{kind}-{n}"

    def remove(self, name: str) -> Impairment:
        with self._lock:
            try:
                self._attacks.pop(name, None)
                self._tampers.pop(name, None)
                return self._impairments.pop(name)
            except KeyError:
                names = ", ".join(self._impairments) or "none"
                raise KeyError(f"no impairment named {name[:MAX_NAME_CHARS]!r} (present: {names})") from None

    def clear(self) -> int:
        with self._lock:
            n = len(self._impairments)
            self._impairments.clear()
            self._attacks.clear()
            self._tampers.clear()
            return n

    def list(self) -> list[Impairment]:
        with self._lock:
            return list(self._impairments.values())

    # --- data path ----------------------------------------------------------------------------
    def _specs(self) -> list[ImpairmentSpec]:
        return [item.spec for item in self._impairments.values()]

    def _fading_name_locked(self) -> str | None:
        """The name of the impairment that fades the channel; None: no fading (AWGN)."""
        return next((name for name, item in self._impairments.items() if item.spec.fades()), None)

    def _fading_locked(self):
        """The channel's LinkChannel (shared.fading) when it fades now; None for AWGN."""
        if self._fading_schedule is not None:
            points, period_s, start = self._fading_schedule
            spec = snr.point_at(points, time.monotonic() - start, period_s)
            return None if spec is None else spec.fading()
        name = self._fading_name_locked()
        return None if name is None else self._impairments[name].spec.fading()

    def schedule_fading(self, points: list[tuple[float, ImpairmentSpec | None]], period_s: float = 0.0) -> None:
        """Follow ``points`` [(seconds, a fading kind's spec, or None for AWGN)] from now (repeating every
        ``period_s`` if > 0); removes any fading impairment. One point: a constant model (`channel set`)."""
        snr.check_times([t for t, _ in points], period_s, "a fading schedule needs at least one point")
        for _, spec in points:
            if spec is not None and not spec.check().fades():
                raise ValueError(f"{spec.kind} is no fading model; a fading schedule takes rayleigh, rician or none")
        with self._lock:
            for name in [n for n, item in self._impairments.items() if item.spec.fades()]:
                del self._impairments[name]
            self._fading_schedule = (list(points), period_s, time.monotonic())

    def _channel_name_locked(self) -> str:
        """"awgn", "rayleigh" or "rician K=<k> dB", with ", block <N>" for fading per N complex symbols."""
        channel = self._fading_locked()
        return "awgn" if channel is None else channel.describe()

    def _noise_pnrs_locked(self) -> list[float]:
        """The PNR (dB) of every impairment that adds Gaussian noise, in order."""
        return [p for p in (spec.noise_pnr_db() for spec in self._specs()) if p is not None]

    def forward(self, latent: bytes, session: str = "", frame_id: int = 0, pilot: bytes = b"",
                pilot_blocks: int = 0) -> FrameFate:
        """One frame through the channel, counted: its drops and delays draw first (seeded), then, unless
        it is lost, its latent and pilot get any fading and the noise (their own streams: the frame's id
        and how many times it has crossed; not the session, which is random by default); ``attack`` says
        whether a latent attack must perturb it."""
        self.count(frames_in=1)
        dropped, delay_s = self.frame_fate()
        if dropped:
            self.count(frames_dropped=1)
            return FrameFate(True, delay_s, latent, False, pilot)
        key = (frame_id, self._transmission(session, frame_id))
        latent, pilot, faded = self.fade(latent, pilot, pilot_blocks, ("fade", *key))
        latent, jammed = self.add_noise(latent, ("frame", *key))
        if pilot:
            pilot, _ = self.add_noise(pilot, ("frame-pilot", *key))
        self.count(frames_forwarded=1, frames_jammed=int(jammed), frames_faded=int(faded))
        return FrameFate(False, delay_s, latent, self.attack_latent_length() is not None, pilot)

    def pass_sync_pilot(self, pilot: bytes, sequence: int) -> bytes:
        """A Sync's pilot through the channel: any fading (one coefficient per pilot, or per block), then the noise."""
        pilot, _, _ = self.fade(pilot, b"", 0, ("fade-pilot", sequence))
        return self.add_noise(pilot, ("pilot", sequence))[0]

    def fade(self, latent: bytes, pilot: bytes, pilot_blocks: int, key: tuple) -> tuple[bytes, bytes, bool]:
        """h x on float32 symbols ``latent`` and their ``pilot`` in ``pilot_blocks`` blocks (shared.pilot_aided),
        h drawn from a stream seeded with (seed, ``key``) -> (latent, pilot, faded?). Unchanged under AWGN,
        and for bytes that are no even number of symbols, or a pilot that does not split into its blocks
        (the receiver judges them)."""
        with self._lock:
            channel = self._fading_locked()
        if channel is None or not is_symbol_bytes(latent) or (len(latent) // 4) % 2:
            return latent, pilot, False
        pilot_ok = is_symbol_bytes(pilot) and pilot_blocks > 0 and (len(pilot) // 4) % (2 * pilot_blocks) == 0
        symbols = torch.from_numpy(bytes_to_array(latent).copy())
        pilot_symbols = torch.from_numpy(bytes_to_array(pilot).copy()) if pilot_ok else None
        generator = torch.Generator().manual_seed(stream_seed(self.seed, *key))
        faded, faded_pilot = fade_frame(symbols, pilot_symbols, pilot_blocks, channel, generator)
        pilot = array_to_bytes(faded_pilot.numpy()) if faded_pilot is not None else pilot
        return array_to_bytes(faded.numpy()), pilot, True

    def _transmission(self, session: str, frame_id: int) -> int:
        """How many times this frame crossed before (0 the first time): a resend gets fresh noise."""
        key = (session, frame_id)
        with self._lock:
            return remember(self._transmissions, key, self._transmissions.get(key, -1) + 1, MAX_TRACKED_FRAMES)

    def add_noise(self, data: bytes, key: tuple = ()) -> tuple[bytes, bool]:
        """Float32 symbols through AWGN + every impairment's noise (one draw at the combined variance)
        -> (bytes, any extra noise?). The draw comes from a stream seeded with (seed, ``key``): a pilot's
        ("pilot", sequence), a frame's (see :meth:`forward`). Malformed bytes pass unchanged:
        the receiver judges them.

        Works on the wire format as a numpy view (no tensor round trip); :func:`noise.apply_channel`
        is the same channel term by term.
        """
        if not is_symbol_bytes(data):
            return data, False
        symbols = bytes_to_array(data)
        with self._lock:
            pnrs = self._noise_pnrs_locked()
            std = noise.combined_noise_std(self._snr_locked(), pnrs)
        draws = np.random.default_rng(stream_seed(self.seed, *key)).standard_normal(symbols.shape[0], dtype=np.float32)
        draws *= np.float32(std)
        # Malformed symbols (inf, NaN) stay non-finite and the receiver rejects the frame; numpy's
        # warning about inf - inf would only be noise in the proxy's log.
        with np.errstate(invalid="ignore", over="ignore"):
            draws += symbols
        return array_to_bytes(draws), bool(pnrs)

    def attack_generator(self) -> torch.Generator:
        """A generator for one Transmit stream's latent attacks (PGD random starts): seeded from
        ``seed`` and the stream's number, so streams differ and a rerun repeats them."""
        with self._lock:
            self._attack_streams += 1
            return torch.Generator().manual_seed(self.seed * 1_000_003 + self._attack_streams)

    def attack_latent_length(self) -> int | None:
        """Symbols per frame the latent attacks' surrogates expect; None when no latent attack is on."""
        with self._lock:
            return next((attack.latent_length for attack in self._attacks.values()), None)

    def attack(self, latents: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor | None:
        """Every latent attack, in order, on received latents [B, L] -> latents + delta (None when none is on).

        At the current SNR; the model work runs outside the lock. Counts the frames and the PNR achieved.
        """
        with self._lock:
            attacks = [self._attacks[name] for name in self._impairments if name in self._attacks]
            snr_db = self._snr_locked()
        if not attacks:
            return None
        attacked, ratios = attack_batch(latents, attacks, snr_db, generator)
        with self._lock:
            self.counters.frames_attacked += len(ratios)
            self._attack_ratio_sum += float(ratios.sum())
        return attacked

    # --- control messages (the tampering kinds) ------------------------------------------------
    def _tamper(self, hook: str, counter: str, *message) -> bool:
        """Every rewriter's ``hook`` on ``message``, in order (seeded draws); counts a changed message."""
        with self._lock:
            changed = False
            for name in self._impairments:
                tamper = self._tampers.get(name)
                if tamper is not None:
                    changed |= getattr(tamper, hook)(*message, self._random.random)
            if changed:
                setattr(self.counters, counter, getattr(self.counters, counter) + 1)
            return changed

    def tamper_sync_reply(self, session: str, reply: link_pb2.SyncReply) -> bool:
        """The SyncReply of ``session``'s Sync, on its way to the sender, in place -> changed?"""
        return self._tamper("sync_reply", "syncs_tampered", session, reply)

    def tamper_frame(self, frame: link_pb2.Frame) -> bool:
        """A frame on its way to the receiver, in place -> changed?"""
        return self._tamper("frame", "frames_tampered", frame)

    def tamper_ack(self, session: str, ack: link_pb2.Ack) -> bool:
        """An ack of ``session`` on its way to the sender, in place -> changed (forged)?"""
        return self._tamper("ack", "acks_forged", session, ack)

    def frame_fate(self) -> tuple[bool, float]:
        """(dropped?, forwarding delay in s) for one frame: every impairment may drop it, then each adds its delay."""
        with self._lock:
            dropped = any(spec.drops_frame(self._random.random) for spec in self._specs())
            return dropped, self._delay_locked()

    def sync_delay(self) -> float:
        with self._lock:
            return self._delay_locked()

    def _delay_locked(self) -> float:
        return sum(spec.added_delay_s(self._random.random) for spec in self._specs())

    def count(self, **increments: int) -> None:
        with self._lock:
            for key, value in increments.items():
                setattr(self.counters, key, getattr(self.counters, key) + value)

    def stats(self) -> dict:
        """Counters, SNRs and ``attack_pnr_db`` (10 log10 of the mean attacked-frame PNR; None before any)."""
        with self._lock:
            snr_db = self._snr_locked()
            attacked = self.counters.frames_attacked
            mean_ratio = self._attack_ratio_sum / attacked if attacked else None
            return {**vars(self.counters), "snr_db": snr_db,
                    "attack_pnr_db": 10.0 * math.log10(mean_ratio) if mean_ratio else None,
                    "effective_snr_db": noise.effective_snr_db(snr_db, self._noise_pnrs_locked()),
                    "snr_scheduled": self._schedule is not None, "impairments": len(self._impairments),
                    "uptime_s": time.monotonic() - self.started, "upstream": self.upstream,
                    "channel": self._channel_name_locked(),
                    "channel_scheduled": self._fading_schedule is not None and len(self._fading_schedule[0]) > 1}
