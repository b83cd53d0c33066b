"""The response surface the agent learns on: SSIM/Adv/Err/reward measured on a (t_D, t_plus, SNR) grid.

Why a grid: one DDPG environment step of the paper is one pipeline run on a batch of B = 256
attacked images (a 20-50 step DDPM chain). The paper's curve needs ~7,500 steps; on 2 CPU cores
one step costs minutes, so live training would take weeks. Instead we run the chain once per grid
cell on *one fixed batch* of PGD-attacked test images (the paper's protocol: l_inf eps 8/255,
10 steps, white-box on the receiver classifier, :func:`shared.attacks.craft`), cache the metrics
as JSON (``checkpoints/<preset>/agent_grid.json``), and the environment reads rewards from a
trilinear interpolation of that table.

What this costs in fidelity (read before trusting the agent's curves):

- The agent learns on a *smoothed, batch-averaged* response surface: every step at (t_D, t_plus,
  SNR) returns the same expected reward, without the batch-to-batch and noise-draw variance a
  live run has. DDPG sees a deterministic, smooth reward, so its training curves (Fig. 4) are
  smoother and converge faster than the paper's live ones.
- Between grid points the surface is linear by construction; a narrow optimum between two grid
  values of t_D or t_plus is invisible. Outside the grid (e.g. SNR < -6 dB) it is clamped flat.
- One batch (n images, one seed) decides every cell: the surface over-fits that batch's images
  and attack. The same diffusion/channel/purifier noise draws are used in every cell (common
  random numbers), which makes differences between cells less noisy, not the level more exact.
- Metrics need no gradients through the chain, so the grid's attack is the non-adaptive one the
  paper uses; an adaptive (EOT) attacker is not modelled here.
- With ``--sampler ddim`` the purifier is the strided sampler (a few U-Net calls instead of t_P),
  a different (cheaper, usually slightly worse) purifier than the receiver's default ddpm chain.

A live reward (:class:`shared.agent.env.LiveRewardSource`) can replace the grid where compute allows.
"""
from __future__ import annotations

import bisect
import datetime as _dt
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..checkpoints import CheckpointError
from .reward import PAPER_WEIGHTS, RewardWeights, adv_rate, batch_ssim, err_rate, reward

GRID_FILE = "agent_grid.json"
BATCH_FILE = "agent_grid.batch.pt"
FORMAT = 1
DEFAULT_T_D = (1, 5, 10, 20, 30, 40, 50)
DEFAULT_T_PLUS = (0, 10, 20, 30, 40, 50)
DEFAULT_SNR_DB = (-6.0, -3.0, 0.0, 3.0, 6.0, 9.0, 12.0, 15.0, 18.0)
METRICS = ("reward", "ssim", "adv", "err", "robust_accuracy", "clean_accuracy", "clean_ssim")
MAKE_COMMAND = "diffusec train agent --preset {preset} --grid-only"


class GridError(CheckpointError):
    """The grid is missing, incomplete or unreadable; the message says which command makes it."""


@dataclass(frozen=True)
class GridAxes:
    t_d: tuple[int, ...] = DEFAULT_T_D
    t_plus: tuple[int, ...] = DEFAULT_T_PLUS
    snr_db: tuple[float, ...] = DEFAULT_SNR_DB

    def __post_init__(self) -> None:
        for name in ("t_d", "t_plus", "snr_db"):
            values = getattr(self, name)
            if not values or list(values) != sorted(set(values)):
                raise ValueError(f"grid axis {name} must be non-empty, strictly increasing, got {values}")
        if min(self.t_d) < 0 or min(self.t_plus) < 0:
            raise ValueError("grid timesteps must be >= 0")

    def cells(self) -> list[tuple[int, int, float]]:
        """Every (t_D, t_plus, SNR), SNR-major then t_D: the cells of one (SNR, t_D) share a decode."""
        return [(d, p, s) for s in self.snr_db for d in self.t_d for p in self.t_plus]

    def to_dict(self) -> dict:
        return {"t_d": list(self.t_d), "t_plus": list(self.t_plus), "snr_db": list(self.snr_db)}


def cell_key(t_d: int, t_plus: int, snr_db: float) -> str:
    return f"{int(t_d)},{int(t_plus)},{float(snr_db):g}"


# The checkpoints a grid is measured on: its header keys on their md5, so new weights mean a new grid.
GRID_CHECKPOINTS = ("codec.pt", "denoiser.pt", "classifier.pt")


# --- the fixed attacked batch ---------------------------------------------------------------------
@dataclass
class AttackedBatch:
    """B clean test images x [B,C,H,W] in [0,1], labels [B], x_adv, and H(x), H(x_adv) (receiver classifier)."""

    x: torch.Tensor
    labels: torch.Tensor
    x_adv: torch.Tensor
    h_clean: torch.Tensor
    h_adv: torch.Tensor
    description: dict = field(default_factory=dict)

    @property
    def fooled_rate(self) -> float:
        """Fraction with H(x) != H(x_adv): the attack's success against the bare classifier."""
        return float((self.h_clean != self.h_adv).float().mean())


def paper_attack():
    """PGD, l_inf eps 8/255, 10 steps, white-box on the receiver classifier (paper VI-A)."""
    from ..attacks.source import SourceAttack

    return SourceAttack("pgd", 8 / 255, steps=10)


@torch.no_grad()
def _predict(pipeline, pixels01: torch.Tensor, batch: int = 256) -> torch.Tensor:
    return torch.cat([pipeline.classify(pixels01[i:i + batch]).argmax(1) for i in range(0, len(pixels01), batch)])


def prepare_batch(pipeline, data, attack=None, seed: int = 0, cache: Path | None = None,
                  models_md5: dict | None = None) -> AttackedBatch:
    """Attack ``data`` (an :class:`~shared.data.ImageSet`, already subset) once; reuse ``cache`` if it matches.

    ``models_md5`` ({checkpoint file: md5}, see :data:`GRID_CHECKPOINTS`) keys the cache on the weights
    too: a batch crafted against another classifier is crafted again.
    """
    from ..attacks.source import craft

    attack = attack or paper_attack()
    description = {"data": data.description, "n": len(data), "seed": seed, "attack": attack.to_dict(),
                   "models_md5": dict(models_md5 or {})}
    if cache is not None and cache.exists():
        blob = torch.load(cache, map_location="cpu", weights_only=True)
        if blob.get("description") == json.loads(json.dumps(description)):
            return AttackedBatch(blob["x"], blob["labels"], blob["x_adv"], blob["h_clean"], blob["h_adv"], description)
    x = data.as_float()
    labels = data.labels.clone()
    generator = torch.Generator().manual_seed(seed)
    x_adv = torch.cat([craft(attack, pipeline, x[i:i + 128], labels[i:i + 128], snr_db=0.0, t_d=0, t_plus=0,
                             system="classifier", generator=generator) for i in range(0, len(x), 128)])
    batch = AttackedBatch(x, labels, x_adv, _predict(pipeline, x).cpu(), _predict(pipeline, x_adv).cpu(), description)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        torch.save({"description": description, "x": x, "labels": labels, "x_adv": x_adv, "h_clean": batch.h_clean,
                    "h_adv": batch.h_adv}, tmp)
        os.replace(tmp, cache)
    return batch


# --- measuring cells ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Measure:
    """How the chain runs in the grid: sampler, its calls, noise seed, whether clean images run too."""

    sampler: str = "ddpm"
    steps: int = 5
    seed: int = 0
    clean: bool = True          # also run the clean batch (clean accuracy/SSIM): doubles the cost
    batch: int = 256            # images per forward pass

    def unet_calls(self, t_p: int) -> int:
        if t_p == 0:
            return 0
        return t_p if self.sampler == "ddpm" else min(self.steps, t_p)


@torch.no_grad()
def received(pipeline, images: torch.Tensor, t_d: int, snr_db: float, measure: Measure) -> torch.Tensor:
    """x_hat = F^-1(AWGN(F(D(x; t_D)))) in model space, with noise seeded by ``measure.seed`` (same in every cell)."""
    generator = torch.Generator().manual_seed(measure.seed)
    out = []
    for i in range(0, len(images), measure.batch):
        x = pipeline.diffuse(images[i:i + measure.batch].to(pipeline.device), t_d, generator)
        out.append(pipeline.decode(pipeline.channel(pipeline.encode(x), snr_db, generator)))
    return torch.cat(out)


@torch.no_grad()
def purified(pipeline, x_hat: torch.Tensor, t_p: int, measure: Measure) -> torch.Tensor:
    """x_final = P(x_hat; t_P) in [0, 1] pixels (CPU), purifier noise seeded by ``measure.seed + 1``."""
    generator = torch.Generator().manual_seed(measure.seed + 1)
    return torch.cat([pipeline.purify(x_hat[i:i + measure.batch], t_p, measure.sampler, measure.steps, generator).cpu()
                      for i in range(0, len(x_hat), measure.batch)])


def cell_metrics(batch: AttackedBatch, final_adv: torch.Tensor, h_final: torch.Tensor,
                 final_clean: torch.Tensor | None = None, h_final_clean: torch.Tensor | None = None,
                 weights: RewardWeights = PAPER_WEIGHTS) -> dict:
    """Eqs. 26-31 and the accuracies for one cell, from the chain's outputs on x_adv (and x)."""
    from ..losses import ssim01

    ssim = batch_ssim(ssim01(batch.x, final_adv, per_image=True))
    adv = adv_rate(batch.h_clean, batch.h_adv, h_final)
    err = err_rate(batch.h_clean, batch.h_adv, h_final)
    out = {"reward": reward(ssim, adv, err, weights), "ssim": ssim, "adv": adv, "err": err,
           "robust_accuracy": float((h_final == batch.labels).float().mean()),
           "clean_accuracy": None, "clean_ssim": None}
    if final_clean is not None:
        out["clean_accuracy"] = float((h_final_clean == batch.labels).float().mean())
        out["clean_ssim"] = batch_ssim(ssim01(batch.x, final_clean, per_image=True))
    return {k: (round(v, 6) if v is not None else None) for k, v in out.items()}


def measure_state(pipeline, batch: AttackedBatch, t_d: int, t_plus: int, snr_db: float, measure: Measure,
                  weights: RewardWeights = PAPER_WEIGHTS) -> dict:
    """One live pipeline run of the attacked (and clean) batch at (t_D, t_plus, SNR) -> metrics dict."""
    images = torch.cat([batch.x_adv, batch.x]) if measure.clean else batch.x_adv
    x_hat = received(pipeline, images, t_d, snr_db, measure)
    return _finish(pipeline, batch, x_hat, t_d + t_plus, measure, weights)


def _finish(pipeline, batch: AttackedBatch, x_hat: torch.Tensor, t_p: int, measure: Measure,
            weights: RewardWeights) -> dict:
    final = purified(pipeline, x_hat, t_p, measure)
    h = _predict(pipeline, final, measure.batch).cpu()
    n = len(batch.x)
    if measure.clean:
        return cell_metrics(batch, final[:n], h[:n], final[n:], h[n:], weights)
    return cell_metrics(batch, final, h, weights=weights)


# --- the cached grid ---------------------------------------------------------------------------------
def _atomic_write(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    os.replace(tmp, path)


def _header(pipeline, batch: AttackedBatch, measure: Measure) -> dict:
    return {"preset": pipeline.preset.name, **batch.description, "sampler": measure.sampler,
            "sampler_steps": measure.steps if measure.sampler == "ddim" else None, "noise_seed": measure.seed,
            "clean": measure.clean}


def estimate_calls(axes: GridAxes, measure: Measure, n: int, done: set[str] = frozenset()) -> int:
    """U-Net image-calls left to measure (the dominant cost; ~100/s on 2 CPU cores for the cifar10 preset)."""
    per = n * (2 if measure.clean else 1)
    return sum(measure.unet_calls(d + p) * per for d, p, s in axes.cells() if cell_key(d, p, s) not in done)


def measure_grid(pipeline, data, path: Path, axes: GridAxes = GridAxes(), measure: Measure = Measure(),
                 attack=None, progress: bool = True, command: str | None = None,
                 models_md5: dict | None = None) -> "Grid":
    """Measure every missing cell of ``axes`` into ``path`` (JSON, rewritten after each cell) -> :class:`Grid`.

    Resumable: cells already in ``path`` with the same header (preset, data, n, seed, attack,
    models' md5, sampler, noise seed, clean) are kept; a different header is an error (use another
    --out or delete the file). The attacked batch is cached beside it (``agent_grid.batch.pt``).
    """
    from tqdm import tqdm

    from ..checkpoints import git_commit

    path = Path(path)
    batch = prepare_batch(pipeline, data, attack, measure.seed, cache=path.with_name(BATCH_FILE), models_md5=models_md5)
    header = json.loads(json.dumps(_header(pipeline, batch, measure)))
    payload: dict = {}
    if path.exists():
        payload = json.loads(path.read_text())
        old = payload.get("header", {})
        if old != header:
            diff = sorted(k for k in set(old) | set(header) if old.get(k) != header.get(k))
            raise GridError(f"{path} was measured with different settings ({', '.join(diff)}); delete it or "
                            f"choose another --out to measure a new grid")
    cells: dict = payload.get("cells", {})
    payload.update(format=FORMAT, header=header, attack_fooled_rate=round(batch.fooled_rate, 6),
                   command=command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), commit=git_commit(),
                   weights=PAPER_WEIGHTS.to_dict(), cells=cells)
    merged = GridAxes(*(tuple(sorted(set(payload.get("axes", {}).get(k, [])) | set(getattr(axes, k))))
                        for k in ("t_d", "t_plus", "snr_db")))
    payload["axes"] = merged.to_dict()
    todo = [c for c in axes.cells() if cell_key(*c) not in cells]
    bar = tqdm(total=len(axes.cells()), initial=len(axes.cells()) - len(todo), desc="agent grid", unit="cell",
               disable=not progress, dynamic_ncols=True)
    start = time.time()
    try:
        groups: dict[tuple[float, int], list[int]] = {}
        for d, p, s in todo:
            groups.setdefault((s, d), []).append(p)
        images = torch.cat([batch.x_adv, batch.x]) if measure.clean else batch.x_adv
        for (s, d), plus in groups.items():
            x_hat = received(pipeline, images, d, s, measure)
            for p in plus:
                bar.set_postfix_str(f"SNR {s:g} dB t_D {d} t_plus {p}")
                t0 = time.time()
                metrics = _finish(pipeline, batch, x_hat, d + p, measure, PAPER_WEIGHTS)
                cells[cell_key(d, p, s)] = {**metrics, "wall_s": round(time.time() - t0, 2)}
                payload["wall_time_s"] = round(payload.get("wall_time_s", 0.0) + time.time() - t0, 2)
                payload["updated"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
                _atomic_write(path, payload)
                bar.update(1)
    finally:
        bar.close()
    if not path.exists():
        _atomic_write(path, payload)
    return Grid.from_payload(payload, path, axes)


# --- interpolation -----------------------------------------------------------------------------------
def _locate(axis: tuple[float, ...], x: float) -> tuple[int, int, float]:
    """Bracketing indices (i, j) and weight w of x on ``axis`` (clamped): value = (1-w) v[i] + w v[j]."""
    if x <= axis[0] or len(axis) == 1:
        return 0, 0, 0.0
    if x >= axis[-1]:
        last = len(axis) - 1
        return last, last, 0.0
    j = bisect.bisect_right(axis, x)
    i = j - 1
    return i, j, (x - axis[i]) / (axis[j] - axis[i])


class Grid:
    """The measured surface: ``values[metric]`` shaped [len(t_d), len(t_plus), len(snr_db)], trilinear lookups."""

    def __init__(self, axes: GridAxes, values: dict[str, np.ndarray], meta: dict | None = None):
        self.axes = axes
        self.values = values
        self.meta = meta or {}
        names = [m for m in METRICS if m in values]
        self._names = names
        self._stack = np.stack([values[m] for m in names], axis=-1).astype(np.float64)

    @classmethod
    def from_payload(cls, payload: dict, path: Path | str = "", axes: GridAxes | None = None) -> "Grid":
        axes = axes or GridAxes(*(tuple(payload["axes"][k]) for k in ("t_d", "t_plus", "snr_db")))
        cells = payload.get("cells", {})
        missing = [cell_key(*c) for c in axes.cells() if cell_key(*c) not in cells]
        if missing:
            preset = payload.get("header", {}).get("preset", "<preset>")
            raise GridError(f"the agent grid {path} lacks {len(missing)} of {len(axes.cells())} cells (e.g. t_D,t_plus,"
                            f"SNR = {missing[0]}): finish it with `{MAKE_COMMAND.format(preset=preset)}` (it resumes)")
        shape = (len(axes.t_d), len(axes.t_plus), len(axes.snr_db))
        values = {}
        for m in METRICS:
            arr = np.full(shape, np.nan)
            for i, d in enumerate(axes.t_d):
                for j, p in enumerate(axes.t_plus):
                    for k, s in enumerate(axes.snr_db):
                        v = cells[cell_key(d, p, s)].get(m)
                        arr[i, j, k] = np.nan if v is None else v
            if not np.isnan(arr).all():
                values[m] = arr
        return cls(axes, values, {k: v for k, v in payload.items() if k != "cells"})

    @classmethod
    def load(cls, path: Path | str, preset: str = "<preset>") -> "Grid":
        path = Path(path)
        if not path.exists():
            raise GridError(f"no agent grid at {path}: measure it with `{MAKE_COMMAND.format(preset=preset)}` "
                            f"(or `diffusec train agent --preset {preset}`, which measures it first)")
        try:
            payload = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise GridError(f"cannot read the agent grid {path}: {err}; delete it and re-run "
                            f"`{MAKE_COMMAND.format(preset=preset)}`") from err
        return cls.from_payload(payload, path)

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self._names)

    def lookup(self, t_d: float, t_plus: float, snr_db: float) -> dict[str, float]:
        """Trilinear interpolation of every metric at (t_D, t_plus, SNR dB), clamped to the grid."""
        (i0, i1, wi), (j0, j1, wj), (k0, k1, wk) = (_locate(self.axes.t_d, t_d), _locate(self.axes.t_plus, t_plus),
                                                    _locate(self.axes.snr_db, snr_db))
        v = self._stack
        c00 = v[i0, j0, k0] * (1 - wk) + v[i0, j0, k1] * wk
        c01 = v[i0, j1, k0] * (1 - wk) + v[i0, j1, k1] * wk
        c10 = v[i1, j0, k0] * (1 - wk) + v[i1, j0, k1] * wk
        c11 = v[i1, j1, k0] * (1 - wk) + v[i1, j1, k1] * wk
        out = (c00 * (1 - wj) + c01 * wj) * (1 - wi) + (c10 * (1 - wj) + c11 * wj) * wi
        return {name: float(out[n]) for n, name in enumerate(self._names)}

    def reward(self, t_d: float, t_plus: float, snr_db: float, weights: RewardWeights = PAPER_WEIGHTS) -> dict:
        """Interpolated metrics with the eq. 31 reward recomputed for ``weights`` (linear, so exact on the surface)."""
        m = self.lookup(t_d, t_plus, snr_db)
        m["reward"] = reward(m["ssim"], m["adv"], m["err"], weights)
        return m

    def best_per_snr(self, key: str = "robust_accuracy", tie: str = "reward") -> dict[float, tuple[int, int]]:
        """SNR -> the measured (t_D, t_plus) with the highest ``key`` (ties: highest ``tie``, then smallest t_P)."""
        a, b = self.values[key], self.values[tie]
        best = {}
        for k, s in enumerate(self.axes.snr_db):
            candidates = [(round(a[i, j, k], 9), round(b[i, j, k], 9), -(d + p), d, p)
                          for i, d in enumerate(self.axes.t_d) for j, p in enumerate(self.axes.t_plus)]
            _, _, _, d, p = max(candidates)
            best[float(s)] = (int(d), int(p))
        return best
