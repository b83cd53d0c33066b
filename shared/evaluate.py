"""In-process evaluation: accuracy and SSIM of a system on the test split (never training images).

Optionally under attack (issue 4): a source attack on the images before the sender and/or a
wireless attack on the received symbols (:mod:`shared.attacks`).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
from tqdm import tqdm

from .attacks.chain import ChannelAttack, attacked_run, success_counts
from .attacks.source import SourceAttack, describe
from .data import ImageSet
from .imaging import save_grid
from .losses import ssim01
from .pipeline import DIGITAL_SYSTEMS, Pipeline

# The Pipeline parts a system runs on; every other system (plain, and the adaptive diffusec and
# table) needs all three. Loading only these keeps e.g. `eval --system vit` from needing a denoiser.
MODEL_PARTS = {"classifier": ("classifier",), "vit": ("codec", "classifier"),
               **dict.fromkeys(DIGITAL_SYSTEMS, ("classifier",))}
GRID_IMAGES = 10   # images shown by save_received_grid


@dataclass
class EvalResult:
    preset: str
    system: str
    snr_db: float | None
    n: int
    accuracy: float            # top-1 on the received images, in [0, 1]
    ssim: float | None         # mean per-image SSIM(original, received) in [0, 1]; None for "classifier"
    t_d: int | None
    t_plus: int | None
    t_p: int | None
    sampler: str | None
    sampler_steps: int | None
    bandwidth_ratio: float     # real channel symbols per source value
    channel_symbols: int
    seed: int
    data: str
    wall_time_s: float
    images_per_s: float
    # attacks (null without): parameters, and the fraction of eligible images the attack won
    # (non-targeted: misclassified; targeted: true label != target and classified as the target)
    source_attack: dict | None = None
    channel_attack: dict | None = None
    attack_success_rate: float | None = None
    # digital baselines (jpeg-ldpc; null otherwise): fraction of images the receiver did not get
    # (mid-grey instead: not sent, BP failed, or JPEG undecodable), the (modulation-code rate) used,
    # and the link's counts and frame plan (shared.baselines.jpeg_ldpc.LinkTally.to_dict)
    decode_failure_rate: float | None = None
    link_mode: str | None = None
    link: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate(pipeline: Pipeline, data: ImageSet, system: str, snr_db: float, t_d: int, t_plus: int,
             seed: int = 0, batch: int = 250, sampler: str = "ddpm", steps: int = 5,
             progress: bool = True, source_attack: SourceAttack | None = None,
             channel_attack: ChannelAttack | None = None, polluted: ImageSet | None = None) -> EvalResult:
    """Run ``data`` through ``system`` in batches; seeded noise makes a run repeatable.

    With attacks, SSIM still compares the *clean* original with what the receiver ends with (what
    the sender meant to send), and accuracy is against the true labels. ``polluted``: ``data`` as the
    non-adaptive ``source_attack`` already polluted it, image for image, sent instead of crafting the
    attack per batch (a sweep crafts each store once; :func:`shared.attacks.source.pollute`).
    """
    if polluted is not None and (source_attack is None or source_attack.adaptive or len(polluted) != len(data)):
        raise ValueError("polluted images stand for a non-adaptive source attack on the same images")
    target = attack_target(source_attack, channel_attack)
    if channel_attack is not None and system == "classifier":
        raise ValueError("a channel attack needs a link: use system vit or plain")
    attacked = source_attack is not None or channel_attack is not None
    tally = None
    if system in DIGITAL_SYSTEMS:
        from .baselines.jpeg_ldpc import LinkTally

        tally = LinkTally()
    generator = torch.Generator().manual_seed(seed)
    correct, ssim_sum, wins, eligible = 0, 0.0, 0, 0
    start = time.time()
    for i in tqdm(range(0, len(data), batch), desc=f"eval {system}", disable=not progress, dynamic_ncols=True):
        x = data.as_float(slice(i, i + batch))
        labels = data.labels[i:i + batch]
        sent, source = (x, source_attack) if polluted is None else (polluted.as_float(slice(i, i + batch)), None)
        if attacked:
            received, logits = attacked_run(pipeline, system, sent, labels, snr_db, t_d, t_plus, sampler, steps,
                                            generator, source=source, channel=channel_attack, link_tally=tally)
        else:
            received, logits = pipeline.run(system, x, snr_db, t_d, t_plus, sampler, steps, generator, link_tally=tally)
        predicted = logits.argmax(1)
        correct += (predicted == labels).sum().item()
        won, could = success_counts(predicted, labels, target)
        wins, eligible = wins + won, eligible + could
        if system != "classifier":
            ssim_sum += ssim01(x, received, per_image=True).sum().item()
    wall = time.time() - start
    link = system != "classifier"
    diffused = system == "plain"
    cfg = pipeline.preset.codec
    return EvalResult(
        preset=pipeline.preset.name, system=system, snr_db=snr_db if link else None, n=len(data),
        accuracy=round(correct / len(data), 4), ssim=round(ssim_sum / len(data), 4) if link else None,
        t_d=t_d if diffused else None, t_plus=t_plus if diffused else None,
        t_p=t_d + t_plus if diffused else None, sampler=sampler if diffused else None,
        sampler_steps=(steps if sampler == "ddim" else t_d + t_plus) if diffused else None,
        bandwidth_ratio=round(cfg.bandwidth_ratio, 6), channel_symbols=cfg.channel_symbols, seed=seed,
        data=data.description, wall_time_s=round(wall, 2), images_per_s=round(len(data) / max(wall, 1e-9), 1),
        source_attack=describe(source_attack, system) if source_attack is not None else None,
        channel_attack=channel_attack.to_dict(system) if channel_attack is not None else None,
        attack_success_rate=round(wins / eligible, 4) if attacked and eligible else None,
        decode_failure_rate=round(tally.decode_failure_rate, 4) if tally is not None and tally.images else None,
        link_mode=",".join(sorted(tally.modes)) if tally is not None else None,
        link=tally.to_dict() if tally is not None else None)


def attack_target(source_attack: SourceAttack | None, channel_attack: ChannelAttack | None) -> int | None:
    """The one target class the attacks aim at (None: non-targeted); ValueError if they disagree."""
    aiming = [source_attack] + ([channel_attack] if channel_attack is not None and channel_attack.kind == "adversarial" else [])
    targets = {a.target for a in aiming if a is not None and a.target is not None}
    if len(targets) > 1:
        raise ValueError(f"the source and channel attacks aim at different targets {sorted(targets)}")
    return targets.pop() if targets else None


def model_parts(system: str) -> tuple[str, ...]:
    """The :meth:`Pipeline.load` parts ``system`` needs (codec, denoiser, classifier)."""
    return MODEL_PARTS.get(system, ("codec", "denoiser", "classifier"))


def _grid_label(system: str, snr_db: float, t_d: int, t_plus: int, link_mode: str | None) -> str:
    if system in DIGITAL_SYSTEMS:
        return f"{system} {snr_db:g} dB {link_mode}"
    return {"classifier": "input", "vit": f"vit {snr_db:g} dB", "plain": f"plain {snr_db:g} dB t={t_d}+{t_plus}"}[system]


def save_received_grid(pipeline: Pipeline, data: ImageSet, system: str, snr_db: float, t_d: int, t_plus: int,
                       sampler: str, steps: int, seed: int, path, source_attack: SourceAttack | None = None,
                       channel_attack: ChannelAttack | None = None, link_mode: str | None = None) -> str:
    """A PNG of the first :data:`GRID_IMAGES` images: the originals, and what the receiver ends with.

    The chain runs again on them with a generator seeded by ``seed`` (as :func:`evaluate`'s), under
    the same attacks; ``link_mode`` (the digital systems' modulation-code rate) labels their row.
    Returns the PNG's path.
    """
    shown = data.as_float(slice(0, GRID_IMAGES))
    received, _ = attacked_run(pipeline, system, shown, data.labels[:GRID_IMAGES], snr_db, t_d, t_plus, sampler, steps,
                               torch.Generator().manual_seed(seed), source=source_attack, channel=channel_attack)
    label = _grid_label(system, snr_db, t_d, t_plus, link_mode)
    if source_attack is not None or channel_attack is not None:
        label += " attacked"
    return str(save_grid([("original", shown), (label, received)], path))
