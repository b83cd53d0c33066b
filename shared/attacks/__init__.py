"""Semantic attacks (issue 4): data-source perturbations and wireless (over-the-air) perturbations.

- :mod:`.budget`: ``parse_eps("8/255")``;
- :mod:`.source`: l_inf FGSM/PGD on the sender's images (``SourceAttack``, ``craft``);
- :mod:`.chain`: the pipeline under attack (``ChannelAttack``, ``attacked_run``);
- :mod:`.differentiable`: grad-enabled copies of the chain stages the attacks differentiate;
- :mod:`.wireless`: perturbations of the received symbols (jamming, adversarial; built separately).
"""
from .budget import format_eps, parse_eps
from .chain import CHANNEL_KINDS, CHANNEL_METHODS, ChannelAttack, attacked_run, success_counts
from .source import KINDS as SOURCE_KINDS
from .source import SourceAttack, craft, fgsm, pgd

__all__ = ["CHANNEL_KINDS", "CHANNEL_METHODS", "ChannelAttack", "SOURCE_KINDS", "SourceAttack", "attacked_run",
           "craft", "fgsm", "format_eps", "parse_eps", "pgd", "success_counts"]
