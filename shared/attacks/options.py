"""Command-line options of the source attack, shared by `diffusec eval` and `diffusec-sender run`.

Light to import (click only): torch loads when an attack is built.
"""
from __future__ import annotations

import click

from .budget import parse_eps

SOURCE_CHOICES = ("none", "fgsm", "pgd")


def _eps_callback(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """Parse ``0.03`` or ``8/255``; a bad value is a usage error naming the option."""
    if value is None:
        return None
    try:
        parsed = parse_eps(value)
    except ValueError as err:
        raise click.BadParameter(str(err), ctx=ctx, param=param) from None
    if param.name == "step_size" and parsed == 0:
        raise click.BadParameter("the step size must be > 0", ctx=ctx, param=param)
    return parsed


SOURCE_ATTACK_OPTIONS = (
    click.option("--source-attack", type=click.Choice(SOURCE_CHOICES), default="none", show_default=True,
                 help="Perturb the images before the sender diffuses them (l_inf): fgsm, or pgd "
                      "(the DiffuSeC paper's 8/256, 10 steps)."),
    click.option("--eps", default="8/255", show_default=True, callback=_eps_callback,
                 help="Source attack budget, l_inf in [0, 1] pixel units: 0.03 or 8/255."),
    click.option("--attack-steps", type=click.IntRange(min=1), default=10, show_default=True,
                 help="Attack iterations (PGD; also the adversarial channel attack's PGD)."),
    click.option("--step-size", default=None, callback=_eps_callback,
                 help="PGD step in [0, 1] pixel units, e.g. 2/255 (default 2.5 * eps / steps; FGSM: eps)."),
    click.option("--target", type=click.IntRange(min=0), default=None,
                 help="Targeted attack: push every image to this class (default: non-targeted)."),
    click.option("--adaptive", is_flag=True,
                 help="Attack the whole chain (diffuse, encode, AWGN, decode, purify, classify) with EOT, "
                      "instead of the receiver's classifier alone. The gradient goes through a strided "
                      "DDIM purifier (3 U-Net calls): backprop through the 20-step chain is too costly on CPU."),
    click.option("--eot-samples", type=click.IntRange(min=1), default=4, show_default=True,
                 help="Noise draws averaged per gradient for --adaptive (expectation over transformation)."),
)


def source_attack_options(func):
    """Decorate a click command with :data:`SOURCE_ATTACK_OPTIONS` (in that order)."""
    for option in reversed(SOURCE_ATTACK_OPTIONS):
        func = option(func)
    return func


def build_source_attack(source_attack: str, eps: float, attack_steps: int, step_size: float | None,
                        target: int | None, adaptive: bool, eot_samples: int):
    """The :class:`~shared.attacks.source.SourceAttack` the options describe, or None for ``none``."""
    if source_attack == "none":
        return None
    from .source import SourceAttack

    return SourceAttack(source_attack, eps, steps=attack_steps, step_size=step_size, target=target,
                        adaptive=adaptive, eot_samples=eot_samples)
