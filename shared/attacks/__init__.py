"""Semantic attacks (issue 4): data-source perturbations and wireless (over-the-air) perturbations.

- :mod:`.budget`: ``parse_eps("8/255")``;
- :mod:`.source`: l_inf FGSM/PGD on the sender's images (``SourceAttack``, ``craft``);
- :mod:`.store`: the polluted image store, crafted once and cached on disk (``cached_polluted_store``);
- :mod:`.chain`: the pipeline under attack (``ChannelAttack``, ``attacked_run``);
- :mod:`.differentiable`: grad-enabled copies of the chain stages the attacks differentiate;
- :mod:`.wireless`: perturbations of the received symbols (jamming, adversarial; built separately);
- :mod:`.options`: the click options of the attacks, shared by `diffusec eval` and the sender.

The sweep of `diffusec eval attacks` is an experiment, so it lives with the report
(:mod:`shared.report.attack_sweep`, :mod:`shared.report.attack_plots`).

The names below load on first use, so that the command-line modules can import
:mod:`.options` and :mod:`.budget` without loading torch.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "parse_eps": "budget", "format_eps": "budget",
    "SourceAttack": "source", "craft": "source", "fgsm": "source", "pgd": "source",
    "polluted_store": "store", "cached_polluted_store": "store",
    "ChannelAttack": "chain", "attacked_run": "chain", "success_counts": "chain",
    "CHANNEL_KINDS": "chain", "CHANNEL_METHODS": "chain",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
