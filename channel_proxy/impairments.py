"""Channel impairments as small pure functions (symbols are real, unit average power; SNRs in dB).

The proxy applies, to every latent symbol and every pilot symbol alike:

- AWGN at the channel SNR: noise variance 10^(-SNR/10) per real symbol (``shared.channel.awgn``);
- ``jamming``: more Gaussian noise at a perturbation-to-noise ratio PNR (dB) relative to the
  channel noise, i.e. variance 10^(-SNR/10) * 10^(PNR/10) -- the same as AWGN at SNR - PNR;

and, per frame, ``drop`` (loss with probability ``rate``) and ``delay`` (``ms`` +- uniform
``jitter_ms``). The SNR itself may follow a piecewise-constant schedule of (seconds, dB) points.

``adversarial`` (latent frames only, never pilots) adds, after AWGN and jamming, a white-box
perturbation crafted on a surrogate of the receiver's decoder + classifier, at exactly the given
PNR per frame (``shared.attacks.wireless``; the proxy side is ``channel_proxy.adversary``).
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

import torch

from shared.channel import awgn

KINDS = ("jamming", "drop", "delay", "adversarial")
ATTACK_METHODS = ("fgm", "pgd")
SNR_RANGE_DB = (-60.0, 120.0)


@dataclass(frozen=True)
class Jamming:
    """Gaussian jamming at ``pnr_db`` (dB above the channel's noise power)."""

    pnr_db: float

    kind = "jamming"


@dataclass(frozen=True)
class Drop:
    """Frame loss with probability ``rate`` in [0, 1]."""

    rate: float

    kind = "drop"


@dataclass(frozen=True)
class Delay:
    """Forwarding delay of ``ms`` milliseconds +- uniform ``jitter_ms``, never negative."""

    ms: float
    jitter_ms: float = 0.0

    kind = "delay"


@dataclass(frozen=True)
class Adversarial:
    """White-box adversarial perturbation of each latent frame at ``pnr_db`` (dB above the noise power).

    ``method`` "fgm" or "pgd" (``steps`` iterations); ``target`` a class for a targeted attack (None:
    non-targeted); ``surrogate`` the checkpoint folder of the attacker's decoder and classifier
    ("": the proxy's own --checkpoints).
    """

    pnr_db: float
    method: str = "fgm"
    steps: int = 10
    target: int | None = None
    surrogate: str = ""

    kind = "adversarial"


Spec = Jamming | Drop | Delay | Adversarial


@dataclass(frozen=True)
class Impairment:
    name: str
    spec: Spec

    @property
    def kind(self) -> str:
        return self.spec.kind

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, **asdict(self.spec)}


MAX_NAME_CHARS = 64


def check_name(name: str) -> str:
    """ValueError unless ``name`` is empty (the proxy picks one) or 1..64 printable characters without spaces."""
    if name and (len(name) > MAX_NAME_CHARS or not name.isprintable() or any(c.isspace() for c in name)):
        raise ValueError(f"impairment name must be 1..{MAX_NAME_CHARS} printable characters without spaces, got "
                         f"{name[:MAX_NAME_CHARS]!r}{'...' if len(name) > MAX_NAME_CHARS else ''} ({len(name)} characters)")
    return name


def check_spec(spec: Spec) -> Spec:
    """ValueError (with the allowed range) unless every parameter of ``spec`` is valid."""
    values = asdict(spec)
    for key, value in values.items():
        if isinstance(value, (int, float)) and not math.isfinite(value):
            raise ValueError(f"{spec.kind} {key} must be a finite number, got {value}")
    if isinstance(spec, (Jamming, Adversarial)) and not -60.0 <= spec.pnr_db <= 60.0:
        raise ValueError(f"{spec.kind} pnr_db must lie in -60..60 dB, got {spec.pnr_db}")
    if isinstance(spec, Adversarial):
        if spec.method not in ATTACK_METHODS:
            raise ValueError(f"adversarial method must be one of {', '.join(ATTACK_METHODS)}, got {spec.method!r}")
        if not 1 <= spec.steps <= 1000:
            raise ValueError(f"adversarial steps must lie in 1..1000, got {spec.steps}")
        if spec.target is not None and spec.target < 0:
            raise ValueError(f"adversarial target must be a class index >= 0, got {spec.target}")
    if isinstance(spec, Drop) and not 0.0 <= spec.rate <= 1.0:
        raise ValueError(f"drop rate must lie in 0..1, got {spec.rate}")
    if isinstance(spec, Delay) and not (0.0 <= spec.ms <= 60_000 and 0.0 <= spec.jitter_ms <= 60_000):
        raise ValueError(f"delay ms and jitter_ms must lie in 0..60000, got {spec.ms}, {spec.jitter_ms}")
    return spec


def check_snr_db(snr_db: float) -> float:
    if not (math.isfinite(snr_db) and SNR_RANGE_DB[0] <= snr_db <= SNR_RANGE_DB[1]):
        raise ValueError(f"SNR must be a finite number of dB in {SNR_RANGE_DB[0]:g}..{SNR_RANGE_DB[1]:g}, got {snr_db}")
    return snr_db


# --- symbol-level ------------------------------------------------------------------------------
def add_awgn(symbols: torch.Tensor, snr_db: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """symbols [N] (unit power) + white Gaussian noise of variance 10^(-snr_db/10)."""
    return awgn(symbols.reshape(1, -1), snr_db, generator).reshape(symbols.shape)


def add_jamming(symbols: torch.Tensor, snr_db: float, pnr_db: float,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """symbols [N] + Gaussian jamming of variance 10^(-snr_db/10) * 10^(pnr_db/10)."""
    return add_awgn(symbols, snr_db - pnr_db, generator)


def apply_channel(symbols: torch.Tensor, snr_db: float, jamming_pnr_db: Iterable[float] = (),
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """The whole symbol-level channel: AWGN at ``snr_db``, then each jamming impairment."""
    out = add_awgn(symbols, snr_db, generator)
    for pnr_db in jamming_pnr_db:
        out = add_jamming(out, snr_db, pnr_db, generator)
    return out


def combined_noise_std(snr_db: float, jamming_pnr_db: Iterable[float] = ()) -> float:
    """Standard deviation of AWGN plus every jamming term, per real symbol.

    The terms are independent zero-mean Gaussians, so adding them one by one (``apply_channel``) and
    drawing once at the summed variance 10^(-SNR/10) (1 + sum 10^(PNR/10)) give the same
    distribution; the proxy's data path draws once (one random call per pilot or latent).
    """
    return math.sqrt(10.0 ** (-snr_db / 10.0) * (1.0 + sum(10.0 ** (p / 10.0) for p in jamming_pnr_db)))


def effective_snr_db(snr_db: float, jamming_pnr_db: Iterable[float] = ()) -> float:
    """SNR counting every jamming term as noise: -10 log10(10^(-SNR/10) (1 + sum 10^(PNR/10)))."""
    noise = 10.0 ** (-snr_db / 10.0) * (1.0 + sum(10.0 ** (p / 10.0) for p in jamming_pnr_db))
    return -10.0 * math.log10(noise)


# --- frame-level -------------------------------------------------------------------------------
def is_dropped(rate: float, u: float) -> bool:
    """Whether a frame is lost, given a uniform draw ``u`` in [0, 1)."""
    return u < rate


def delay_s(ms: float, jitter_ms: float, u: float) -> float:
    """Delay in seconds for a uniform draw ``u`` in [0, 1): ms + (2u - 1) jitter_ms, at least 0."""
    return max(0.0, ms + (2.0 * u - 1.0) * jitter_ms) / 1000.0


# --- SNR schedules -----------------------------------------------------------------------------
def check_schedule(points: Sequence[tuple[float, float]], period_s: float = 0.0) -> list[tuple[float, float]]:
    """Validate (at_s, snr_db) points: at least one, at_s >= 0 and non-decreasing, SNRs in range."""
    points = [(float(t), float(db)) for t, db in points]
    if not points:
        raise ValueError("an SNR schedule needs at least one (seconds, dB) point")
    previous = 0.0
    for at_s, snr_db in points:
        if not math.isfinite(at_s) or at_s < previous:
            raise ValueError(f"schedule times must be finite, >= 0 and non-decreasing; got {at_s} after {previous}")
        check_snr_db(snr_db)
        previous = at_s
    if not math.isfinite(period_s) or period_s < 0 or (period_s and period_s <= points[-1][0]):
        raise ValueError(f"period_s must be 0 (no repeat) or longer than the last point's time "
                         f"({points[-1][0]} s), got {period_s}")
    return points


def snr_at(points: Sequence[tuple[float, float]], elapsed_s: float, period_s: float = 0.0) -> float:
    """The scheduled SNR (dB) ``elapsed_s`` seconds after the start: the last point at or before it."""
    if period_s > 0:
        elapsed_s = elapsed_s % period_s
    current = points[0][1]
    for at_s, snr_db in points:
        if at_s > elapsed_s:
            break
        current = snr_db
    return current


def parse_schedule_csv(text: str) -> list[tuple[float, float]]:
    """CSV rows ``seconds,snr_db`` (an optional header row, blank lines and '#' comments allowed)."""
    points, header_allowed = [], True
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if header_allowed and not _is_number(cells[0]):
            header_allowed = False
            continue  # a header row such as "seconds,snr_db"
        header_allowed = False
        try:
            if len([c for c in cells if c]) != 2:
                raise ValueError
            at_s, snr_db = float(cells[0]), float(cells[1])
        except (ValueError, IndexError):
            raise ValueError(f"schedule line {number}: expected 'seconds,snr_db', got {','.join(row)!r}") from None
        points.append((at_s, snr_db))
    return check_schedule(points)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
