"""The DiffuSeC chain under attack: a polluted source and/or a perturbation added over the air.

    x --(source attack)--> x' -> [diffuse t_D] -> encode -> AWGN(snr) -> + delta(z_hat) -> decode
      -> [purify t_P] -> classify

The wireless perturbation delta [B, L] comes from :mod:`shared.attacks.wireless` (imported
lazily: that module is built separately) and is added after the channel noise, as a signal
superimposed at the receiver's input. Its power is set by the perturbation-to-noise ratio (PNR,
dB, relative to the channel noise power; the signal has unit power per real symbol).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from ..diffusion import to_model_space, to_pixels
from ..pipeline import DIGITAL_SYSTEMS, SYSTEMS, Pipeline
from .differentiable import GRADIENT_PURIFY_STEPS, purify_strided
from .source import SourceAttack, craft

CHANNEL_KINDS = ("jamming", "adversarial")
CHANNEL_METHODS = ("fgm", "pgd")


@dataclass(frozen=True)
class ChannelAttack:
    """A wireless attack on the received symbols at ``pnr_db`` (dB above the channel noise power)."""

    kind: str                   # "jamming": Gaussian noise; "adversarial": gradient-crafted (FGM/PGD)
    pnr_db: float
    method: str = "fgm"         # adversarial only
    steps: int = 10             # adversarial PGD iterations
    target: int | None = None   # adversarial only; None: non-targeted
    adaptive: bool = False      # plain: the attacker also differentiates through the purifier (strided surrogate)

    def __post_init__(self) -> None:
        if self.kind not in CHANNEL_KINDS:
            raise ValueError(f"unknown channel attack {self.kind!r}; use one of {CHANNEL_KINDS}")
        if not (isinstance(self.pnr_db, (int, float)) and math.isfinite(self.pnr_db)):
            raise ValueError(f"PNR must be a finite number of dB, got {self.pnr_db!r}")
        if self.method not in CHANNEL_METHODS:
            raise ValueError(f"unknown channel attack method {self.method!r}; use one of {CHANNEL_METHODS}")
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"channel attack steps must be a positive integer, got {self.steps!r}")
        if self.target is not None and (not isinstance(self.target, int) or self.target < 0):
            raise ValueError(f"target must be a class index >= 0, got {self.target!r}")

    def to_dict(self, system: str | None = None) -> dict:
        out = asdict(self)
        if self.kind == "jamming":
            out.update(method=None, steps=None, target=None, adaptive=None, gradient_path=None)
        else:
            if self.method == "fgm":
                out["steps"] = None     # one gradient step
            through = (f"decode -> strided DDIM purify ({GRADIENT_PURIFY_STEPS} U-Net calls) -> classify"
                       if self.adaptive and system == "plain" else "decode -> classify (receiver's decoder and classifier)")
            out["gradient_path"] = through
        return out


def wireless_module():
    """``shared.attacks.wireless``, imported on first use (RuntimeError naming the file if absent)."""
    try:
        from . import wireless
    except ModuleNotFoundError as err:
        if err.name != f"{__package__}.wireless":
            raise
        raise RuntimeError("channel attacks need shared/attacks/wireless.py, which this checkout does not have") from None
    return wireless


def channel_perturbation(attack: ChannelAttack, pipeline: Pipeline, system: str, z_hat: torch.Tensor, *,
                         snr_db: float, t_p: int, labels: torch.Tensor | None,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """delta [B, L] for the received symbols ``z_hat`` [B, L] (row mean power 10^((PNR - SNR)/10))."""
    wireless = wireless_module()
    if attack.kind == "jamming":
        return wireless.jamming(z_hat, snr_db=snr_db, pnr_db=attack.pnr_db, generator=generator)

    def decode(z: torch.Tensor) -> torch.Tensor:          # grad-enabled F^-1: the no_grad method would cut the graph
        return pipeline.codec.decode(z)

    def classify(pixels01: torch.Tensor) -> torch.Tensor:
        if attack.adaptive and system == "plain":
            pixels01 = purify_strided(pipeline, to_model_space(pixels01), t_p)
        return pipeline.classifier(pixels01)

    with torch.enable_grad():
        delta = wireless.latent_perturbation(z_hat, decode=decode, classify=classify, snr_db=snr_db,
                                             pnr_db=attack.pnr_db, method=attack.method, steps=attack.steps,
                                             target=attack.target, labels=labels, generator=generator)
    return delta.detach()


def attacked_run(pipeline: Pipeline, system: str, pixels01: torch.Tensor, labels: torch.Tensor, snr_db: float,
                 t_d: int = 20, t_plus: int = 0, sampler: str = "ddpm", steps: int = 5,
                 generator: torch.Generator | None = None, source: SourceAttack | None = None,
                 channel: ChannelAttack | None = None, link_tally=None) -> tuple[torch.Tensor, torch.Tensor]:
    """:meth:`Pipeline.run` with attacks: -> (received [B,C,H,W] in [0,1], logits [B, K]), both on the CPU.

    Without attacks this *is* ``pipeline.run`` (same noise draws). The source attack perturbs
    ``pixels01`` before anything else; the channel attack (``vit``/``plain`` only) adds delta to
    the received symbols. ``link_tally`` is passed to ``pipeline.run`` (digital systems count
    their undelivered images there).
    """
    if system not in SYSTEMS:
        raise ValueError(f"unknown system {system!r}; use one of {SYSTEMS}")
    if system in DIGITAL_SYSTEMS:
        check_digital_attacks(system, source, channel)
    if source is not None:
        pixels01 = craft(source, pipeline, pixels01, labels, snr_db=snr_db, t_d=t_d, t_plus=t_plus, system=system,
                         generator=generator)
    if channel is None:
        return pipeline.run(system, pixels01, snr_db, t_d, t_plus, sampler, steps, generator, link_tally=link_tally)
    if system == "classifier":
        raise ValueError("a channel attack needs a link: use system vit or plain")
    pixels01 = pixels01.to(pipeline.device)
    x = pipeline.diffuse(pixels01, t_d, generator) if system == "plain" else to_model_space(pixels01)
    z_hat = pipeline.channel(pipeline.encode(x), snr_db, generator)
    z_hat = z_hat + channel_perturbation(channel, pipeline, system, z_hat, snr_db=snr_db, t_p=t_d + t_plus,
                                         labels=labels.to(z_hat.device), generator=generator)
    x_hat = pipeline.decode(z_hat)
    received = pipeline.purify(x_hat, t_d + t_plus, sampler, steps, generator) if system == "plain" else to_pixels(x_hat)
    return received.cpu(), pipeline.classify(received).cpu()


def check_digital_attacks(system: str, source: SourceAttack | None, channel: ChannelAttack | None) -> None:
    """ValueError for the attacks a digital (JPEG + LDPC) system does not support.

    The wireless attacks perturb the semantic latent and take gradients through the codec's
    decoder: the digital link has neither. An adaptive source attack would differentiate through
    JPEG quantisation and BP decoding, which are not differentiable; the non-adaptive (white-box
    on the receiver classifier) attack is the paper's protocol and works.
    """
    if channel is not None:
        raise ValueError(f"channel attacks are not supported on {system}: they perturb the semantic latent "
                         "through the codec's decoder, which the digital link does not have")
    if source is not None and source.adaptive:
        raise ValueError(f"an adaptive source attack cannot differentiate through {system} (JPEG quantisation "
                         "and BP decoding); drop --adaptive to attack the receiver classifier (white-box)")


def success_counts(predicted: torch.Tensor, labels: torch.Tensor, target: int | None) -> tuple[int, int]:
    """(successes, eligible images) for the attack success rate.

    Non-targeted: every image is eligible, success = misclassified. Targeted (the attack paper's
    definition): images whose true label is not the target are eligible, success = classified as
    the target.
    """
    if target is None:
        return int((predicted != labels).sum()), len(labels)
    eligible = labels != target
    return int((predicted[eligible] == target).sum()), int(eligible.sum())
