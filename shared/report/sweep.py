"""The measurements of `diffusec report`: every system at every SNR, without attack and under PGD.

Protocol (DiffuSeC paper, VI-A and VI-C):

- the attack is PGD, l_inf eps 8/255 (the paper's 8/256 at 8-bit precision), 10 steps,
  white-box against the system's *own* classifier alone (the receiver's classifier for
  jpeg-ldpc, vit, plain and diffusec; the adversarially trained one for jpeg-ldpc-at). It
  pollutes the image store once, stored 8-bit within the budget, and every SNR and every system
  sharing that classifier sees the same polluted images;
- ``plain`` diffuses and denoises 20 steps (t_D = 20, t_plus = 0); ``diffusec`` starts each
  batch from a random (t_D in 1..50, t_plus in 0..50) and takes 3 policy steps at the SNR,
  accuracy averaged over the 3 (:func:`shared.agent.evaluate.evaluate_adaptive`); ``table``
  (asked for by name) puts each batch at the agent grid's best (t_D, t_plus) for the SNR, the
  oracle the actor is measured against;
- standard accuracy and SSIM come from the runs without attack; SSIM compares each clean test
  image with what the receiver ends with (after purification where there is one).

Everything is seeded: the same ``seed`` gives the same images, attacks and channel noise, so a
cell's result depends only on its inputs. That makes the run resumable: each finished cell is
written to a cache file (``results.cells.json`` beside the results) with everything it depends
on (the settings, the images, the md5 of its system's checkpoints), and a rerun takes the cells
whose inputs are unchanged.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from ..baselines.nr_link import LINK_NAME as DIGITAL_LINK
from ..pipeline import DIGITAL_SYSTEMS
from . import extra_attacks

SNRS_DB = tuple(float(s) for s in range(-6, 19, 3))
SYSTEMS = ("jpeg-ldpc", "jpeg-ldpc-at", "vit", "plain", "diffusec", "table")
# table (the agent's grid oracle: the best measured (t_D, t_plus) per SNR) is not a system of the
# paper; it measures how far the actor is from the best fixed choice, so it runs only when asked.
DEFAULT_SYSTEMS = SYSTEMS[:-1]
# Systems that take a random start + policy steps per batch (VI-C), and the step policy each loads.
STEP_POLICY_SYSTEMS = {"diffusec": "ddpg", "table": "table"}
LABELS = {"jpeg-ldpc": "JPEG + LDPC", "jpeg-ldpc-at": "JPEG + LDPC + AT", "vit": "ViT-based",
          "plain": "DiffuSeC (plain)", "diffusec": "DiffuSeC (proposal)", "table": "grid oracle (table)"}


@dataclass(frozen=True)
class ReportConfig:
    """Every setting of a report run (shown by ``diffusec report --help`` and written to results.json)."""

    preset: str = "cifar10"
    n: int = 1000                                   # test images per cell
    snrs_db: tuple[float, ...] = SNRS_DB            # channel SNRs (dB), Fig. 5's -6..18
    systems: tuple[str, ...] = DEFAULT_SYSTEMS
    eps: float = 8 / 255                            # PGD budget, l_inf in [0, 1] pixel units
    attack_steps: int = 10                          # PGD iterations (VI-A)
    plain_t_d: int = 20                             # DiffuSeC (plain): 20 diffusing steps ...
    plain_t_plus: int = 0                           # ... and 20 denoising steps (VI-C)
    sampler: str = "ddpm"                           # purifier of plain and diffusec: ddpm (receiver's) or ddim
    sampler_steps: int = 5                          # U-Net calls of the ddim purifier
    policy_steps: int = 3                           # diffusec: policy steps per batch (VI-C)
    seed: int = 0                                   # images, attack starts, channel and diffusion noise
    batch: int = 250
    figure_snrs_db: tuple[float, ...] = (-3.0, 3.0, 9.0, 15.0)   # the rows of the Fig. 6 analogue
    figure_images: int = 3                          # images per row of the Fig. 6 analogue
    adaptive_snrs_db: tuple[float, ...] = (-3.0, 3.0, 15.0)  # the adaptive column: PGD with EOT through the chain
    adaptive_n: int = 200                           # ... on the first this many of the images
    eot_samples: int = 4                            # ... noise draws averaged per gradient
    heldout_snrs_db: tuple[float, ...] = (3.0, 15.0)  # attacks the defence was not tuned to, at these SNRs
    heldout_attacks: tuple[str, ...] = ("fgsm-8/255", "pgd-4/255", "pgd-16/255")   # extra_attacks.HELDOUT_ATTACKS
    channel: str = "awgn"                           # awgn | rayleigh | rician: every system's link (shared.fading)
    k_db: float | None = None                       # rician: K factor (dB)
    fading_block: int | None = None                 # complex symbols per fading coefficient; None: one per image

    def __post_init__(self) -> None:
        unknown = [s for s in self.systems if s not in SYSTEMS]
        if unknown or not self.systems:
            raise ValueError(f"unknown system(s) {unknown}; choose from {', '.join(SYSTEMS)}")
        if self.sampler not in ("ddim", "ddpm"):
            raise ValueError(f"sampler must be ddim or ddpm, got {self.sampler!r}")
        if not self.snrs_db:
            raise ValueError("give at least one SNR")
        bad = [s for s in self.snrs_db if not math.isfinite(s) or abs(s) > 100]
        if bad:
            raise ValueError(f"SNRs must be finite numbers of dB within -100..100, got {', '.join(map(str, bad))}")
        if self.n < 1 or self.batch < 1 or self.attack_steps < 1 or self.policy_steps < 1:
            raise ValueError("n, batch, attack steps and policy steps must be positive")
        self.link_channel()   # ValueError for an option the channel does not take
        from .extra_attacks import HELDOUT_ATTACKS

        unknown = [a for a in self.heldout_attacks if a not in HELDOUT_ATTACKS]
        if unknown or self.adaptive_n < 1 or self.eot_samples < 1:
            raise ValueError(f"held-out attacks are {', '.join(HELDOUT_ATTACKS)} (got {unknown}); adaptive_n and "
                             f"eot_samples must be positive")

    def link_channel(self):
        """The shared.fading.LinkChannel every system's link goes through (perfect CSI, zf)."""
        from ..fading import link_channel

        return link_channel(self.channel, self.k_db, self.fading_block)

    def to_dict(self) -> dict:
        return asdict(self)


def quick(config: ReportConfig) -> ReportConfig:
    """Smoke-sized: 24 images, SNRs -6/3/12 dB, 2 PGD steps, 2-call purifier, one image per figure row."""
    from dataclasses import replace

    return replace(config, n=min(config.n, 24), snrs_db=(-6.0, 3.0, 12.0), attack_steps=2, sampler="ddim",
                   sampler_steps=2, batch=min(config.batch, 24), figure_snrs_db=(-3.0, 15.0), figure_images=1,
                   adaptive_snrs_db=(3.0,), adaptive_n=min(config.adaptive_n, 8), eot_samples=1,
                   heldout_snrs_db=(3.0,), heldout_attacks=("fgsm-8/255",))


@dataclass
class Models:
    """What the systems need: the receiver's pipeline, the AT classifier's, the DDPG actor."""

    pipeline: object                       # shared.pipeline.Pipeline with codec, denoiser, classifier
    pipeline_at: object | None = None      # classifier_at only (jpeg-ldpc-at)
    policies: dict = field(default_factory=dict)   # step-policy system -> ActorPolicy (diffusec) / TablePolicy (table)
    fingerprint: dict = field(default_factory=dict)   # checkpoint file -> md5 (the cache key)
    agent_grid: dict | None = None         # the grid the actor learned from: {"n", "cells", "sampler", ...}


def load_models(config: ReportConfig, checkpoints: str | Path | None, device: str = "cpu") -> Models:
    """Load what ``config.systems`` need; CheckpointError naming the command that makes a missing file."""
    from ..checkpoints import checkpoint_md5s, resolve_checkpoint_dir
    from ..pipeline import Pipeline, classifier_kind_for

    link = any(s in config.systems for s in ("vit", "plain", *STEP_POLICY_SYSTEMS))
    parts = ("codec", "denoiser", "classifier") if link else ("classifier",)
    directory = resolve_checkpoint_dir(config.preset, checkpoints)
    models = Models(Pipeline.load(config.preset, checkpoints, parts, device))
    models.pipeline.link_channel = config.link_channel()
    models.fingerprint = checkpoint_md5s(directory, ("codec.pt", "denoiser.pt", "classifier.pt", "classifier_at.pt",
                                                     "agent.pt", "agent_grid.json"))
    if "jpeg-ldpc-at" in config.systems:
        models.pipeline_at = Pipeline.load(config.preset, checkpoints, ("classifier",), device,
                                           classifier_kind=classifier_kind_for("jpeg-ldpc-at"))
        models.pipeline_at.link_channel = config.link_channel()
    for system, policy_name in STEP_POLICY_SYSTEMS.items():
        if system in config.systems:
            from ..agent.policy import load_step_policy

            models.policies[system] = load_step_policy(policy_name, directory, config.preset)
    if "diffusec" in config.systems:
        models.agent_grid = agent_grid_summary(directory)
    return models


def agent_grid_summary(directory: Path) -> dict | None:
    """What the shipped actor learned from: agent.json's grid header and the cells in agent_grid.json."""
    from ..agent.grid import GRID_FILE
    from ..checkpoints import read_manifest

    header = read_manifest(directory, "agent").get("grid")
    if not header:
        return None
    grid_path = directory / GRID_FILE
    cells = len(json.loads(grid_path.read_text()).get("cells", {})) if grid_path.exists() else None
    return {"n": header.get("n"), "cells": cells, "data": header.get("data"), "seed": header.get("seed"),
            "sampler": header.get("sampler"), "sampler_steps": header.get("sampler_steps")}


def paper_attack(config: ReportConfig):
    from ..attacks.source import SourceAttack

    return SourceAttack("pgd", config.eps, steps=config.attack_steps)


def polluted(pipeline, data, config: ReportConfig, attack=None):
    """The image store after ``attack`` (default: the paper's PGD) on ``pipeline``'s classifier: an ImageSet of uint8
    images, crafted once per classifier, images, attack and seed and then read from the disk cache."""
    from ..attacks.store import cached_polluted_store

    return cached_polluted_store(pipeline, data, attack or paper_attack(config), config.seed, config.batch)


def classifier_row(pipeline, clean, attacked) -> dict:
    """The classifier alone, no channel: accuracy on the clean and on the polluted images."""
    from ..training.common import classifier_accuracy

    return {name: round(classifier_accuracy(pipeline.classifier, images.as_float(), images.labels), 4)
            for name, images in (("clean_accuracy", clean), ("robust_accuracy", attacked))}


def _cell(models: Models, system: str, data, snr_db: float, config: ReportConfig, source_attack=None) -> dict:
    """One system on one image set at one SNR (under ``source_attack``, crafted per batch; None: the images
    as they are) -> the eval JSON dict (accuracy, ssim, ...)."""
    from ..evaluate import evaluate

    if system in STEP_POLICY_SYSTEMS:
        from ..agent.evaluate import evaluate_adaptive

        # The oracle's choice ignores the start state, so its 3 steps would repeat one state: 1 is enough.
        steps = config.policy_steps if system == "diffusec" else 1
        return evaluate_adaptive(models.pipeline, data, system, models.policies[system], snr_db, config.seed,
                                 config.batch, config.sampler, config.sampler_steps, progress=False,
                                 source_attack=source_attack, policy_steps=steps)
    pipeline = models.pipeline_at if system == "jpeg-ldpc-at" else models.pipeline
    return evaluate(pipeline, data, system, snr_db, config.plain_t_d, config.plain_t_plus, config.seed, config.batch,
                    config.sampler, config.sampler_steps, progress=False, source_attack=source_attack).to_dict()


def _figure_rows(models: Models, clean, attacked, config: ReportConfig) -> dict:
    """The Fig. 6 analogue's data: per SNR, DiffuSeC's state after its policy steps from plain's, and
    the clean, attacked, received (decoded, before purification) and purified images [k, C, H, W]."""
    from ..diffusion import to_pixels

    pipeline = models.pipeline
    k = min(config.figure_images, len(clean))
    x, x_adv, labels = clean.as_float(slice(0, k)), attacked.as_float(slice(0, k)), clean.labels[:k]
    rows = []
    for snr in config.figure_snrs_db:
        state = (config.plain_t_d, config.plain_t_plus)
        if "diffusec" in models.policies:
            for _ in range(config.policy_steps):
                state = models.policies["diffusec"].step(state[0], state[1], snr)
        g = torch.Generator().manual_seed(config.seed)
        z_hat = pipeline.channel(pipeline.encode(pipeline.diffuse(x_adv, state[0], g)), snr, g)
        x_hat = pipeline.decode(z_hat)
        final = pipeline.purify(x_hat, state[0] + state[1], config.sampler, config.sampler_steps, g).cpu()
        rows.append({"snr_db": snr, "t_d": state[0], "t_plus": state[1], "received": to_pixels(x_hat).cpu(),
                     "purified": final, "predicted": pipeline.classify(final).argmax(1).tolist()})
    return {"clean": x, "attacked": x_adv, "labels": labels.tolist(), "classes": list(clean.classes),
            "clean_predicted": pipeline.classify(x).argmax(1).tolist(),
            "attacked_predicted": pipeline.classify(x_adv).argmax(1).tolist(), "rows": rows}


@dataclass
class Report:
    config: ReportConfig
    data: str
    classifier: dict = field(default_factory=dict)     # name -> {"clean_accuracy", "robust_accuracy"}
    curves: dict = field(default_factory=dict)         # system -> {"snr_db", "standard_accuracy", "robust_accuracy", "ssim", ...}
    runs: list = field(default_factory=list)           # every eval JSON, tagged with "condition"
    figure: dict | None = None                         # tensors for the Fig. 6 analogue (not serialised)
    wall_time_s: float = 0.0                           # this invocation (cached cells cost nothing)
    cells_wall_time_s: float = 0.0                     # the cells' own eval times, cached ones included
    agent_grid: dict | None = None                     # Models.agent_grid, for the report's reading
    adaptive: dict = field(default_factory=dict)       # system -> {"snr_db", "accuracy", "n"}: PGD + EOT through the chain
    heldout: dict = field(default_factory=dict)        # attack -> system -> {"snr_db", "accuracy"}

    def to_dict(self) -> dict:
        return {"config": self.config.to_dict(), "data": self.data, "classifier": self.classifier,
                "curves": self.curves, "runs": self.runs, "adaptive": self.adaptive, "heldout": self.heldout, "wall_time_s": self.wall_time_s,
                "cells_wall_time_s": self.cells_wall_time_s, "agent_grid": self.agent_grid,
                "figure": None if self.figure is None else {
                    "labels": self.figure["labels"], "clean_predicted": self.figure["clean_predicted"],
                    "attacked_predicted": self.figure["attacked_predicted"],
                    "rows": [{k: v for k, v in r.items() if k not in ("received", "purified")}
                             for r in self.figure["rows"]]}}


# The checkpoint files each system's cells depend on (the PGD store depends on the same classifier).
SYSTEM_FILES = {"jpeg-ldpc": ("classifier.pt",), "jpeg-ldpc-at": ("classifier_at.pt",),
                "vit": ("codec.pt", "classifier.pt"), "plain": ("codec.pt", "denoiser.pt", "classifier.pt"),
                "diffusec": ("codec.pt", "denoiser.pt", "classifier.pt", "agent.pt"),
                "table": ("codec.pt", "denoiser.pt", "classifier.pt", "agent_grid.json")}


class CellCache:
    """Finished cells in a JSON file; atomic writes.

    The file's key is what every cell depends on (settings and images); each cell also records the
    md5 of the checkpoint files its system uses, and is reused only while they are unchanged. A
    file with another key is left alone until the first new cell replaces it.
    """

    def __init__(self, path: Path | None, key: dict, fingerprint: dict[str, str]):
        self.path, self.key, self.fingerprint = path, key, fingerprint
        self.cells: dict[str, dict] = {}
        if path is not None and path.exists():
            try:
                saved = json.loads(path.read_text())
            except (OSError, ValueError):
                saved = {}
            if saved.get("key") == key:
                self.cells = saved.get("cells", {})

    @staticmethod
    def name(system: str, snr_db: float, condition: str) -> str:
        return f"{system}|{snr_db:g}|{condition}"

    def files(self, system: str) -> dict[str, str | None]:
        """What a cell of ``system`` depends on besides the key: its checkpoints' md5 (and the digital link's code)."""
        files = {f: self.fingerprint.get(f) for f in SYSTEM_FILES[system]}
        if system in DIGITAL_SYSTEMS:   # cells measured on the 802.16e link (before 2026-12-02) are not reused
            files["digital_link"] = DIGITAL_LINK
        return files

    def get(self, system: str, snr_db: float, condition: str) -> dict | None:
        cell = self.cells.get(self.name(system, snr_db, condition))
        if cell is None or cell.get("checkpoints") != self.files(system):
            return None
        return cell["run"]

    def get_or_measure(self, system: str, snr_db: float, condition: str, measure) -> dict:
        """The cached run of the cell, or ``measure()``'s, tagged with its condition and SNR and saved."""
        run = self.get(system, snr_db, condition)
        if run is None:
            run = measure()
            run.pop("visited", None)
            run.update(condition=condition, snr_db=snr_db)
            self.put(system, snr_db, condition, run)
        return run

    def put(self, system: str, snr_db: float, condition: str, run: dict) -> None:
        self.cells[self.name(system, snr_db, condition)] = {"checkpoints": self.files(system), "run": run}
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"format": 2, "key": self.key, "cells": self.cells}) + "\n")
            os.replace(tmp, self.path)


def cache_key(data, config: ReportConfig) -> dict:
    """What every cell depends on: the settings (not which systems or SNRs) and the images."""
    where = ("systems", "snrs_db", "figure_snrs_db", "figure_images", "adaptive_snrs_db", "heldout_snrs_db",
             "heldout_attacks", "adaptive_n", "eot_samples")   # which cells (the adaptive ones name n and EOT)
    settings = json.loads(json.dumps({k: v for k, v in config.to_dict().items() if k not in where}))   # as saved
    images = hashlib.md5(data.images.numpy().tobytes() + data.labels.numpy().tobytes()).hexdigest()
    return {"format": 2, "settings": settings, "data": data.description, "images_md5": images}


def run_report(models: Models, data, config: ReportConfig, progress: bool = True,
               cache_path: Path | None = None) -> Report:
    """Measure every (system, SNR, condition) cell of ``config`` on ``data`` (an ImageSet of test images).

    With ``cache_path``, cells found there (same key) are reused and each new one is saved as it ends.
    """
    start = time.time()
    report = Report(config, data.description, agent_grid=models.agent_grid)
    cache = CellCache(cache_path, cache_key(data, config), models.fingerprint)
    digital_at = "jpeg-ldpc-at" in config.systems
    cells = len(config.snrs_db) * len(config.systems) * 2 + extra_attacks.cell_count(config)
    bar = tqdm(total=cells + 1 + digital_at, desc="report", unit="cell", disable=not progress, dynamic_ncols=True)
    try:
        bar.set_postfix_str("PGD on the receiver classifier")
        attacked = polluted(models.pipeline, data, config)
        bar.update(1)
        report.classifier["receiver"] = classifier_row(models.pipeline, data, attacked)
        attacked_at = None
        if digital_at:
            bar.set_postfix_str("PGD on the adversarially trained classifier")
            attacked_at = polluted(models.pipeline_at, data, config)
            bar.update(1)
            report.classifier["adversarially_trained"] = classifier_row(models.pipeline_at, data, attacked_at)
        for system in config.systems:
            report.curves[system] = {"label": LABELS[system], "snr_db": list(config.snrs_db), "standard_accuracy": [],
                                     "robust_accuracy": [], "ssim": [], "decode_failure_rate": [], "mean_states": []}
        for snr in config.snrs_db:
            for system in config.systems:
                curve = report.curves[system]
                for condition, images in (("standard", data), ("pgd", attacked_at if system == "jpeg-ldpc-at" else attacked)):
                    bar.set_postfix_str(f"{system} {snr:g} dB {condition}")
                    run = cache.get_or_measure(system, snr, condition,
                                               lambda: _cell(models, system, images, snr, config))
                    report.runs.append(run)
                    if condition == "standard":
                        curve["standard_accuracy"].append(run["accuracy"])
                        curve["ssim"].append(run["ssim"])
                        curve["decode_failure_rate"].append(run.get("decode_failure_rate"))
                    else:
                        curve["robust_accuracy"].append(run["accuracy"])
                        if system in STEP_POLICY_SYSTEMS:
                            curve["mean_states"].append([run.get("mean_t_d"), run.get("mean_t_plus")])
                    bar.update(1)
        report.adaptive, report.heldout = extra_attacks.measure(
            data, config, cache, lambda system, images, snr, attack: _cell(models, system, images, snr, config,
                                                                                 attack),
            lambda attack: polluted(models.pipeline, data, config, attack), bar)
        if any(s in config.systems for s in ("plain", "diffusec")):
            report.figure = _figure_rows(models, data, attacked, config)
    finally:
        bar.close()
    report.wall_time_s = round(time.time() - start, 1)
    report.cells_wall_time_s = round(sum(r.get("wall_time_s") or 0.0 for r in report.runs)
                                     + extra_attacks.wall_time_s(report.adaptive, report.heldout), 1)
    return report
