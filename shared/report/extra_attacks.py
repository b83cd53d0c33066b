"""Two tables beside Table II's paper protocol (issue 19): the adaptive attack, and attacks the defence
was not tuned to.

- **Adaptive** (the honest worst case for a purification defence): PGD, the paper's eps and steps,
  differentiating through the whole chain (diffusion, codec, channel, a 3-call DDIM surrogate of the
  purifier, the classifier) and averaging the gradient over ``eot_samples`` noise draws (EOT). For
  ``plain`` it is crafted at the fixed (t_D, t_plus); for ``diffusec`` at every state the agent visits
  (the attacker knows the policy). On the first ``adaptive_n`` of the report's images.
- **Held out**: FGSM 8/255, PGD 4/255 and PGD 16/255 on the classifier alone (the paper's protocol,
  other budgets), polluting the image store as Table II's PGD does, at ``heldout_snrs_db``.

Cells go through the report's cell cache like the others (conditions ``adaptive`` and the attack's name).
"""
from __future__ import annotations

from ..attacks.source import SourceAttack
from ..data import ImageSet

# name -> (kind, eps in [0, 1] pixel units); PGD keeps the paper's 10 steps
HELDOUT_ATTACKS = {"fgsm-8/255": ("fgsm", 8 / 255), "pgd-4/255": ("pgd", 4 / 255), "pgd-16/255": ("pgd", 16 / 255)}
DEFENCES = ("plain", "diffusec")


def adaptive_attack(config) -> SourceAttack:
    """PGD at the report's eps and steps through the whole chain, EOT over ``config.eot_samples`` draws."""
    return SourceAttack("pgd", config.eps, steps=config.attack_steps, adaptive=True, eot_samples=config.eot_samples)


def heldout_attack(name: str, config) -> SourceAttack:
    """The HELDOUT_ATTACKS entry ``name`` on the classifier alone (FGSM: one step; PGD: the report's steps)."""
    kind, eps = HELDOUT_ATTACKS[name]
    return SourceAttack(kind, eps, steps=1 if kind == "fgsm" else config.attack_steps)


def first(data: ImageSet, n: int) -> ImageSet:
    """The first ``n`` images of ``data`` (all of them when it has fewer)."""
    if n >= len(data):
        return data
    return ImageSet(data.images[:n], data.labels[:n], data.classes, f"{data.description}, first {n}", data.checksum)


def cell_count(config) -> int:
    """Cells these tables add to the report's progress bar."""
    defences = [s for s in DEFENCES if s in config.systems]
    return len(defences) * (len(config.adaptive_snrs_db) + len(config.heldout_snrs_db) * len(config.heldout_attacks))


def adaptive_condition(config) -> str:
    """The adaptive cells' name in the cell cache: they depend on the images and the EOT draws."""
    return f"adaptive-n{config.adaptive_n}-eot{config.eot_samples}"


def measure(data: ImageSet, config, cache, run_cell, polluted, bar) -> tuple[dict, dict]:
    """(adaptive, heldout): {system: {"snr_db": [...], "accuracy": [...]}} and {attack: {system: {...}}}.

    ``run_cell(system, images, snr, source_attack)`` measures one cell; ``polluted(attack)`` makes a
    classifier-only polluted store of ``data``; ``cache`` the report's CellCache; ``bar`` its progress bar.
    """
    defences = [s for s in DEFENCES if s in config.systems]
    adaptive_data = first(data, config.adaptive_n)
    adaptive = {s: {"snr_db": list(config.adaptive_snrs_db), "accuracy": [], "wall_time_s": [], "n": len(adaptive_data)}
                for s in defences if config.adaptive_snrs_db}   # no SNRs (--adaptive-snr none): no column
    for snr in config.adaptive_snrs_db:
        for system in defences:
            run = _cached(cache, system, snr, adaptive_condition(config), bar,
                          lambda: run_cell(system, adaptive_data, snr, adaptive_attack(config)))
            _append(adaptive[system], run)
    heldout = {}
    for name in config.heldout_attacks if config.heldout_snrs_db else ():
        store = None
        heldout[name] = {s: {"snr_db": list(config.heldout_snrs_db), "accuracy": [], "wall_time_s": []}
                         for s in defences}
        for snr in config.heldout_snrs_db:
            for system in defences:
                def fresh(system=system, snr=snr):
                    nonlocal store
                    store = store if store is not None else polluted(heldout_attack(name, config))
                    return run_cell(system, store, snr, None)
                _append(heldout[name][system], _cached(cache, system, snr, name, bar, fresh))
    return adaptive, heldout


def _append(curve: dict, run: dict) -> None:
    curve["accuracy"].append(run["accuracy"])
    curve["wall_time_s"].append(run.get("wall_time_s") or 0.0)


def wall_time_s(adaptive: dict, heldout: dict) -> float:
    """The adaptive and held-out cells' own eval time (s), as each was measured (cached ones included)."""
    curves = list(adaptive.values()) + [c for by_system in heldout.values() for c in by_system.values()]
    return sum(sum(c.get("wall_time_s", [])) for c in curves)


def _cached(cache, system: str, snr: float, condition: str, bar, make) -> dict:
    bar.set_postfix_str(f"{system} {snr:g} dB {condition}")
    run = cache.get_or_measure(system, snr, condition, make)
    bar.update(1)
    return run
