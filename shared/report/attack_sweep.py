"""The attack paper's sweeps (Figs. 5 and 6) for the undefended link and DiffuSeC (``diffusec eval attacks``).

For each system (``vit``: the link without diffusion, undefended; ``plain``: DiffuSeC):

(a) accuracy vs PNR (dB) under the adversarial wireless attack and under Gaussian jamming of the
    same power (Fig. 6);
(b) the multi-domain attack: a source attack of strength ``source_eps`` on the images plus the
    adversarial wireless attack at each PNR (Fig. 6), with the source attack alone for reference;
(c) attack success rate vs source-attack strength eps, targeted vs non-targeted (Fig. 5).

Every point is one :func:`shared.evaluate.evaluate` run on the same images with the same seed. A
non-adaptive source attack (white-box on the classifier alone) pollutes the image store once per
strength and target, 8-bit as the sender keeps it, and every point that uses it sends that store.
An experiment runner like the report's sweep, so it lives beside it: the attacks themselves
(:mod:`shared.attacks`) know nothing of it.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace

from tqdm import tqdm

from ..attacks.budget import format_eps
from ..attacks.chain import ChannelAttack
from ..attacks.source import SourceAttack
from ..attacks.store import cached_polluted_store
from ..data import ImageSet
from ..evaluate import evaluate
from ..pipeline import Pipeline

# The attack paper's multi-domain source strength on MNIST (Fig. 6) is 0.1; for CIFAR-10 the
# DiffuSeC paper's budget is 8/256 (we use 8/255, the usual 8-bit level).
DEFAULT_SOURCE_EPS = {"mnist": 0.1, "fmnist": 0.1, "cifar10": 8 / 255}
DEFAULT_EPS_LIST = {"mnist": (0.05, 0.1, 0.2, 0.3), "fmnist": (0.05, 0.1, 0.2, 0.3),
                    "cifar10": (1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255)}


def pnr_grid(start: float = -20.0, stop: float = 0.0, step: float = 5.0) -> tuple[float, ...]:
    """PNR values in dB from ``start`` to ``stop`` inclusive (ValueError on an empty or endless grid)."""
    if step <= 0 or stop < start:
        raise ValueError(f"PNR grid needs step > 0 and start <= stop, got {start}..{stop} step {step}")
    count = int((stop - start) / step + 1e-9) + 1
    return tuple(round(start + i * step, 6) for i in range(count))


@dataclass(frozen=True)
class SweepConfig:
    """What ``eval attacks`` measures. SNR/PNR in dB; eps in [0, 1] pixel units (l_inf)."""

    systems: tuple[str, ...] = ("vit", "plain")
    snr_db: float = 5.0                         # the attack paper evaluates at 5 dB
    pnr_db: tuple[float, ...] = pnr_grid()      # -20..0 dB
    source_kind: str = "pgd"
    source_eps: float = 8 / 255                 # strength of the source part of the multi-domain attack
    eps_list: tuple[float, ...] = DEFAULT_EPS_LIST["cifar10"]
    attack_steps: int = 10
    channel_method: str = "fgm"                 # the attack paper's wireless attack is FGM
    target: int = 0                             # class of the targeted strength curve
    adaptive: bool = False
    eot_samples: int = 4
    t_d: int = 20
    t_plus: int = 0
    sampler: str = "ddpm"
    sampler_steps: int = 5
    seed: int = 0
    batch: int = 250

    def source(self, eps: float, target: int | None = None) -> SourceAttack:
        return SourceAttack(self.source_kind, eps, steps=self.attack_steps, target=target, adaptive=self.adaptive,
                            eot_samples=self.eot_samples)

    def channel(self, kind: str, pnr_db: float) -> ChannelAttack:
        return ChannelAttack(kind, pnr_db, method=self.channel_method, steps=self.attack_steps,
                             adaptive=self.adaptive)

    def runs_per_system(self) -> int:
        p, e = len(self.pnr_db), len(self.eps_list)
        return 1 + 2 * p + (1 + p) + 2 * e

    def to_dict(self) -> dict:
        out = asdict(self)
        out["source_eps_label"] = format_eps(self.source_eps)
        out["eps_labels"] = [format_eps(e) for e in self.eps_list]
        return out


def sweep_config(dataset: str, source_eps: float | None = None, eps_list: tuple[float, ...] | None = None,
                 **settings) -> SweepConfig:
    """A :class:`SweepConfig` whose source strengths default to ``dataset``'s (:data:`DEFAULT_SOURCE_EPS`,
    :data:`DEFAULT_EPS_LIST`; CIFAR-10's for a dataset without its own); ``settings``: the other fields."""
    return SweepConfig(source_eps=source_eps if source_eps is not None else DEFAULT_SOURCE_EPS.get(dataset, 8 / 255),
                       eps_list=eps_list or DEFAULT_EPS_LIST.get(dataset, DEFAULT_EPS_LIST["cifar10"]), **settings)


@dataclass
class SweepResult:
    preset: str
    dataset: str
    data: str
    n: int
    config: dict
    baseline: dict = field(default_factory=dict)       # system -> clean accuracy at snr_db
    pnr: dict = field(default_factory=dict)            # (a) system -> {pnr_db, adversarial, jamming}: accuracies
    multi_domain: dict = field(default_factory=dict)   # (b) system -> {pnr_db, wireless_only, multi_domain, source_only}
    strength: dict = field(default_factory=dict)       # (c) system -> {eps, non_targeted, targeted}: success rates
    runs: list = field(default_factory=list)           # every EvalResult, in order
    wall_time_s: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def run_sweep(pipeline: Pipeline, data: ImageSet, config: SweepConfig, progress: bool = True) -> SweepResult:
    """Every point of (a), (b), (c) for every system; one progress bar over all the runs."""
    result = SweepResult(pipeline.preset.name, pipeline.preset.dataset, data.description, len(data), config.to_dict())
    bar = tqdm(total=config.runs_per_system() * len(config.systems), desc="attack sweep", unit="run",
               disable=not progress, dynamic_ncols=True)
    start = time.time()

    stores: dict[SourceAttack, ImageSet] = {}

    def point(system: str, label: str, source: SourceAttack | None = None,
              channel: ChannelAttack | None = None) -> dict:
        bar.set_postfix_str(f"{system} {label}")
        store = None
        if source is not None and not source.adaptive:   # the classifier-only attack: one store for every point
            if source not in stores:
                stores[source] = cached_polluted_store(pipeline, data, source, config.seed, config.batch)
            store = stores[source]
        run = evaluate(pipeline, data, system, config.snr_db, config.t_d, config.t_plus, config.seed, config.batch,
                       config.sampler, config.sampler_steps, progress=False, source_attack=source,
                       channel_attack=channel, polluted=store).to_dict()
        if store is not None:
            run["source_attack"]["store"] = "crafted once per attack, stored 8-bit, sent to every point"
        run["sweep_point"] = label
        result.runs.append(run)
        bar.update(1)
        return run

    try:
        for system in config.systems:
            result.baseline[system] = point(system, "clean")["accuracy"]
            pnrs = list(config.pnr_db)
            curves = {kind: [point(system, f"{kind} {p:g} dB", channel=config.channel(kind, p))["accuracy"]
                             for p in pnrs] for kind in ("adversarial", "jamming")}
            result.pnr[system] = {"pnr_db": pnrs, **curves}
            source = config.source(config.source_eps)
            source_only = point(system, f"source eps {format_eps(config.source_eps)}", source=source)["accuracy"]
            multi = [point(system, f"multi-domain {p:g} dB", source=source,
                           channel=config.channel("adversarial", p))["accuracy"] for p in pnrs]
            result.multi_domain[system] = {"pnr_db": pnrs, "source_eps": config.source_eps, "source_only": source_only,
                                           "wireless_only": curves["adversarial"], "multi_domain": multi}
            eps_list = list(config.eps_list)
            rates = {name: [point(system, f"{name} eps {format_eps(e)}", source=config.source(e, target))
                            ["attack_success_rate"] for e in eps_list]
                     for name, target in (("non_targeted", None), ("targeted", config.target))}
            result.strength[system] = {"eps": eps_list, "target": config.target, **rates}
    finally:
        bar.close()
    result.wall_time_s = round(time.time() - start, 2)
    return result


def quick(config: SweepConfig) -> SweepConfig:
    """A smoke-sized sweep: PNR every 10 dB, the two largest strengths, 3 attack steps, 5-call DDIM purifier."""
    return replace(config, pnr_db=pnr_grid(config.pnr_db[0], config.pnr_db[-1], 10.0),
                   eps_list=tuple(sorted(config.eps_list)[-2:]), attack_steps=min(config.attack_steps, 3),
                   sampler="ddim", sampler_steps=min(config.sampler_steps, 5), eot_samples=min(config.eot_samples, 2))
