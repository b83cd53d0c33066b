"""``adversarial``: a white-box perturbation of every latent frame (never pilots), crafted on a
surrogate of the receiver's decoder + classifier, at exactly ``pnr_db`` per frame (the attack
paper's wireless attack, :mod:`shared.attacks.wireless`). Its defaults live here, once: the CLI's
flags and the ChannelControl messages take them from this class.

Adding one loads the surrogate (:meth:`Adversarial.latent_attack`); the models and the batched
attack of a Transmit stream are :mod:`channel_proxy.adversary`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..base import ImpairmentSpec
from ..params import param
from ..registry import register
from .jamming import pnr_db_param

if TYPE_CHECKING:
    from ...adversary import LatentAttack, Surrogates

METHODS = ("fgm", "pgd")   # shared.attacks.wireless.METHODS, without importing torch for --help
MAX_STEPS = 1000


def target_param(help: str = "a class to push every frame towards (default: non-targeted)."):
    """A class, optional (the kinds that take one share the --target flag)."""
    return param(help, metavar="C", low=0, default=None)


@register
@dataclass(frozen=True)
class Adversarial(ImpairmentSpec):
    """White-box adversarial perturbation of each latent frame at ``pnr_db`` (dB above the noise power).

    ``method`` "fgm" or "pgd" (``steps`` iterations); ``target`` a class for a targeted attack (None:
    non-targeted); ``surrogate`` the checkpoint folder of the attacker's decoder and classifier
    ("": the proxy's own --checkpoints).
    """

    pnr_db: float = pnr_db_param()
    method: str = param("fast gradient method or projected gradient descent.", choices=METHODS, default="fgm")
    steps: int = param("PGD iterations.", metavar="N", low=1, high=MAX_STEPS, default=10)
    target: int | None = target_param()
    surrogate: str = param("checkpoint folder, on the proxy's machine, of the surrogate decoder and classifier "
                           "(default: the proxy's --checkpoints).", metavar="DIR", default="")

    kind = "adversarial"
    summary = ("white-box perturbation of every latent frame (not pilots),\n"
               "crafted on a surrogate decoder + classifier at exactly DB PNR")
    add_timeout_s = 120.0   # the first one loads the surrogate models on the proxy

    def latent_attack(self, surrogates: Surrogates) -> LatentAttack:
        """The attack on latent frames with its surrogate loaded: CheckpointError when the folder lacks
        it, ValueError when ``target`` is no class of its classifier."""
        from ...adversary import LatentAttack

        surrogate = surrogates.get(self.surrogate)
        if self.target is not None and self.target >= surrogate.num_classes:
            raise ValueError(f"adversarial target {self.target} is out of range: the surrogate's classifier "
                             f"has {surrogate.num_classes} classes (0..{surrogate.num_classes - 1})")
        return LatentAttack(surrogate, self.pnr_db, self.method, self.steps, self.target)
