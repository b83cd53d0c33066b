"""How much of a source perturbation survives purification: ``diffusec eval purification``.

For each t, the same test images are sent twice, clean (x) and attacked (x' = x + d, PGD on the
classifier alone, the paper's protocol), with the *same* noise draws for diffusion, channel and
purifier, so the two outputs differ only through d:

- without the codec (default): x -> q_sample(x, t) -> purify from t -> classify;
- with ``link_snr_db``: x -> diffuse(t) -> encode -> AWGN -> decode -> purify from t -> classify.

Reported per t: clean- and attacked-purified accuracy, their gap, the survival ratio
||P(x') - P(x)||_2 / ||x' - x||_2 (per image, then averaged; 0 = the purifier removes d entirely,
1 = it passes d through at full size) and the SSIM of each output to the clean original.
Images are [0, 1] pixels [B, C, H, W]; SNR in dB; t in 0..T.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import torch
from tqdm import tqdm

from .attacks.source import SourceAttack, craft
from .data import ImageSet
from .losses import ssim01
from .pipeline import Pipeline


@dataclass
class PurificationPoint:
    """One t: accuracies in [0, 1], gap = attacked - clean, survival (dimensionless), SSIM in [0, 1]."""

    t: int
    clean_accuracy: float
    attacked_accuracy: float
    gap: float
    survival: float | None     # None when no image was perturbed (eps = 0)
    ssim_clean: float
    ssim_attacked: float


@dataclass
class PurificationReport:
    preset: str
    data: str
    n: int
    attack: dict
    sampler: str
    sampler_steps: int | None
    eta: float | None                   # ddim's noise scale (0: deterministic); None for ddpm
    link_snr_db: float | None           # None: no codec (diffuse -> purify -> classify)
    classifier_clean_accuracy: float    # the classifier on x, no link
    classifier_attacked_accuracy: float  # ... on x'
    perturbation_l2: float              # mean ||x' - x||_2 per image, [0, 1] pixel units
    seed: int
    points: list[PurificationPoint] = field(default_factory=list)
    wall_time_s: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _received(pipeline: Pipeline, x01: torch.Tensor, t: int, link_snr_db: float | None,
              generator: torch.Generator) -> torch.Tensor:
    """What reaches the purifier, model space [B, C, H, W]: x_t (no codec) or the decoded image."""
    x_t = pipeline.diffuse(x01, t, generator)
    if link_snr_db is None:
        return x_t
    return pipeline.decode(pipeline.channel(pipeline.encode(x_t), link_snr_db, generator))


def purify_once(pipeline: Pipeline, x01: torch.Tensor, t: int, link_snr_db: float | None, sampler: str,
                steps: int, seed: int, eta: float = 0.0) -> torch.Tensor:
    """One pass with every noise drawn from a generator seeded ``seed``: [B,C,H,W] [0,1] -> same."""
    generator = torch.Generator().manual_seed(seed)
    return pipeline.purify(_received(pipeline, x01.to(pipeline.device), t, link_snr_db, generator), t, sampler,
                           steps, generator, eta).cpu()


def survival_ratio(purified_clean: torch.Tensor, purified_attacked: torch.Tensor,
                   clean: torch.Tensor, attacked: torch.Tensor) -> torch.Tensor:
    """Per image ||P(x') - P(x)|| / ||x' - x|| -> [B] (images with x' = x are left out as NaN)."""
    moved = (purified_attacked - purified_clean).flatten(1).norm(dim=1)
    size = (attacked - clean).flatten(1).norm(dim=1)
    return torch.where(size > 0, moved / size.clamp_min(1e-12), torch.full_like(size, float("nan")))


def _mean_or_none(values: torch.Tensor) -> float | None:
    """The mean of the finite entries, rounded; None when there are none."""
    finite = values[values.isfinite()]
    return round(finite.mean().item(), 4) if len(finite) else None


def measure_purification(pipeline: Pipeline, data: ImageSet, ts: list[int], attack: SourceAttack, *,
                         sampler: str = "ddpm", steps: int = 5, eta: float = 0.0, link_snr_db: float | None = None,
                         seed: int = 0, batch: int = 100, progress: bool = False) -> PurificationReport:
    """The diagnostic over ``ts`` on ``data`` (see the module docstring)."""
    start = time.time()
    x = data.as_float()
    attack_gen = torch.Generator().manual_seed(seed)
    chunks = range(0, len(data), batch)
    x_adv = torch.cat([craft(attack, pipeline, x[i:i + batch], data.labels[i:i + batch], snr_db=0.0, t_d=0, t_plus=0,
                             system="classifier", generator=attack_gen) for i in chunks])
    correct = lambda images: (pipeline.classify(images.to(pipeline.device)).argmax(1).cpu() == data.labels)
    report = PurificationReport(
        preset=pipeline.preset.name, data=data.description, n=len(data), attack=attack.to_dict(), sampler=sampler,
        sampler_steps=steps if sampler == "ddim" else None, eta=eta if sampler == "ddim" else None,
        link_snr_db=link_snr_db,
        classifier_clean_accuracy=round(correct(x).float().mean().item(), 4),
        classifier_attacked_accuracy=round(correct(x_adv).float().mean().item(), 4),
        perturbation_l2=round((x_adv - x).flatten(1).norm(dim=1).mean().item(), 4), seed=seed)
    for t in tqdm(ts, desc="purification", disable=not progress, dynamic_ncols=True):
        seeds = [seed * 1_000_003 + t * 1009 + i for i in chunks]
        clean = torch.cat([purify_once(pipeline, x[i:i + batch], t, link_snr_db, sampler, steps, s, eta)
                           for i, s in zip(chunks, seeds)])
        attacked = torch.cat([purify_once(pipeline, x_adv[i:i + batch], t, link_snr_db, sampler, steps, s, eta)
                              for i, s in zip(chunks, seeds)])
        clean_acc, attacked_acc = correct(clean).float().mean().item(), correct(attacked).float().mean().item()
        report.points.append(PurificationPoint(
            t=t, clean_accuracy=round(clean_acc, 4), attacked_accuracy=round(attacked_acc, 4),
            gap=round(attacked_acc - clean_acc, 4),
            survival=_mean_or_none(survival_ratio(clean, attacked, x, x_adv)),
            ssim_clean=round(ssim01(x, clean).item(), 4), ssim_attacked=round(ssim01(x, attacked).item(), 4)))
    report.wall_time_s = round(time.time() - start, 1)
    return report


def plot_purification(report: PurificationReport, path) -> str:
    """Accuracy against t, clean- and attacked-purified, with the classifier's own two levels; a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ts = [p.t for p in report.points]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(ts, [p.clean_accuracy for p in report.points], "o-", label="clean, purified")
    ax.plot(ts, [p.attacked_accuracy for p in report.points], "s-", label="attacked, purified")
    ax.axhline(report.classifier_clean_accuracy, color="grey", ls="--", lw=1, label="classifier, clean")
    ax.axhline(report.classifier_attacked_accuracy, color="grey", ls=":", lw=1, label="classifier, attacked")
    where = f"link at {report.link_snr_db:g} dB" if report.link_snr_db is not None else "no codec"
    sampler = report.sampler + (f" ({report.sampler_steps} calls, eta {report.eta:g})" if report.sampler_steps else "")
    ax.set(xlabel="t (diffusion and purification steps)", ylabel="accuracy", ylim=(0, 1),
           title=f"{report.preset}: purification, {where}, {sampler}, n={report.n}")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)
