"""Evaluation of the adaptive system (paper VI-C): `diffusec eval --system diffusec|table`, `eval adaptation`.

For every batch of test images: a random initial state (t_D uniform on 1..50, t_plus on 0..50),
then 3 policy steps at the measured SNR; the chain runs at each of the 3 chosen states and the
accuracy is averaged over the 3 steps ("let the adaptive diffusion scheme choose the next state
of the model for 3 steps to get the average robust accuracy"). The SNR the policy sees is the
eval SNR itself (a perfect pilot estimate; the link's receiver measures it on a pilot).
"""
from __future__ import annotations

import time

import numpy as np
import torch
from tqdm import tqdm

from ..attacks.chain import attacked_run, success_counts
from ..attacks.source import craft, describe
from ..evaluate import EvalResult, attack_target
from ..losses import ssim01
from .env import EnvConfig

POLICY_STEPS = 3


def evaluate_adaptive(pipeline, data, system: str, policy, snr_db: float, seed: int = 0, batch: int = 250,
                      sampler: str = "ddpm", steps: int = 5, progress: bool = True, source_attack=None,
                      channel_attack=None, policy_steps: int = POLICY_STEPS, measured_snr_db: float | None = None,
                      env_config: EnvConfig = EnvConfig(), polluted=None) -> dict:
    """Accuracy/SSIM averaged over ``policy_steps`` states per batch; the EvalResult fields plus the visited states.

    ``polluted``: ``data`` as the non-adaptive ``source_attack`` already polluted it (an ImageSet, e.g.
    :func:`shared.attacks.store.cached_polluted_store`), sent instead of crafting per batch.
    """
    if polluted is not None and (source_attack is None or source_attack.adaptive or len(polluted) != len(data)):
        raise ValueError("polluted images stand for a non-adaptive source attack on the same images")
    target = attack_target(source_attack, channel_attack)
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    seen_snr = snr_db if measured_snr_db is None else measured_snr_db
    correct = wins = eligible = runs = 0
    ssim_sum = 0.0
    visited: list[list[list[int]]] = []
    start = time.time()
    for i in tqdm(range(0, len(data), batch), desc=f"eval {system}", disable=not progress, dynamic_ncols=True):
        x = data.as_float(slice(i, i + batch))
        labels = data.labels[i:i + batch]
        x_in, source = _sent(pipeline, x, labels, source_attack, polluted, slice(i, i + batch), snr_db, generator)
        lo_d, hi_d = env_config.t_d_range
        lo_p, hi_p = env_config.t_plus_range
        state = (int(rng.integers(lo_d, hi_d + 1)), int(rng.integers(lo_p, hi_p + 1)))
        path = [list(state)]
        for _ in range(policy_steps):
            state = policy.step(state[0], state[1], seen_snr)
            path.append(list(state))
            received, logits = attacked_run(pipeline, "plain", x_in, labels, snr_db, state[0], state[1], sampler, steps,
                                            generator, source=source, channel=channel_attack)
            predicted = logits.argmax(1)
            correct += int((predicted == labels).sum())
            won, could = success_counts(predicted, labels, target)
            wins, eligible = wins + won, eligible + could
            ssim_sum += float(ssim01(x, received, per_image=True).sum())
            runs += len(x)
        visited.append(path)
    wall = time.time() - start
    cfg = pipeline.preset.codec
    attacked = source_attack is not None or channel_attack is not None
    result = EvalResult(
        preset=pipeline.preset.name, system=system, snr_db=snr_db, n=len(data), accuracy=round(correct / runs, 4),
        ssim=round(ssim_sum / runs, 4), t_d=None, t_plus=None, t_p=None, sampler=sampler,
        sampler_steps=steps if sampler == "ddim" else None, bandwidth_ratio=round(cfg.bandwidth_ratio, 6),
        channel_symbols=cfg.channel_symbols, seed=seed, data=data.description, wall_time_s=round(wall, 2),
        images_per_s=round(runs / max(wall, 1e-9), 1),
        source_attack=describe(source_attack, "plain") if source_attack is not None else None,
        channel_attack=channel_attack.to_dict("plain") if channel_attack is not None else None,
        attack_success_rate=round(wins / eligible, 4) if attacked and eligible else None).to_dict()
    final = [p[-1] for p in visited]
    result.update(policy=getattr(policy, "describe", lambda: system)(), policy_steps=policy_steps,
                  measured_snr_db=seen_snr, visited=visited,
                  mean_t_d=round(float(np.mean([s[0] for p in visited for s in p[1:]])), 2),
                  mean_t_plus=round(float(np.mean([s[1] for p in visited for s in p[1:]])), 2),
                  final_states=final)
    return result


def _sent(pipeline, x, labels, source_attack, polluted, rows: slice, snr_db: float, generator):
    """(the images the sender sends [B,C,H,W] in [0, 1], the attack still to apply in the chain or None).

    The classifier-only attack does not depend on the state: it is crafted once per batch (or read
    from ``polluted``); an adaptive one is crafted in the chain at each state.
    """
    if polluted is not None:
        return polluted.as_float(rows), None
    if source_attack is not None and not source_attack.adaptive:
        return craft(source_attack, pipeline, x, labels, snr_db=snr_db, t_d=0, t_plus=0, system="classifier",
                     generator=generator), None
    return x, source_attack


ADAPTATION_SNRS = tuple(float(s) for s in range(-6, 19, 3))


def run_adaptation(pipeline, data, policies: dict, snrs=ADAPTATION_SNRS, attack=None, seed: int = 0,
                   batch: int = 250, sampler: str = "ddpm", steps: int = 5, plain: tuple[int, int] | None = (20, 0), progress: bool = True) -> dict:
    """Robust accuracy vs SNR for each policy (``{"diffusec": ActorPolicy, "table": TablePolicy}``) and plain."""
    from ..attacks.store import cached_polluted_store
    from ..evaluate import evaluate
    from .grid import paper_attack

    attack = attack or paper_attack()
    # The paper's attacker pollutes the store once: every SNR and system sends the same 8-bit images.
    store = cached_polluted_store(pipeline, data, attack, seed, batch) if not attack.adaptive else None
    systems = [*policies, *(["plain"] if plain is not None else [])]
    curves = {s: {"snr_db": [], "robust_accuracy": [], "ssim": [], "visited": []} for s in systems}
    runs = []
    start = time.time()
    bar = tqdm(total=len(snrs) * len(systems), desc="adaptation", unit="run", disable=not progress, dynamic_ncols=True)
    try:
        for snr in snrs:
            for system in systems:
                bar.set_postfix_str(f"{system} {snr:g} dB")
                if system == "plain":
                    run = evaluate(pipeline, data, "plain", snr, plain[0], plain[1], seed, batch, sampler, steps,
                                   progress=False, source_attack=attack, polluted=store).to_dict()
                    run["visited"] = None
                else:
                    run = evaluate_adaptive(pipeline, data, system, policies[system], snr, seed, batch, sampler, steps,
                                            progress=False, source_attack=attack, polluted=store)
                curve = curves[system]
                curve["snr_db"].append(snr)
                curve["robust_accuracy"].append(run["accuracy"])
                curve["ssim"].append(run["ssim"])
                curve["visited"].append(run["visited"])
                runs.append(run)
                bar.update(1)
    finally:
        bar.close()
    return {"preset": pipeline.preset.name, "data": data.description, "n": len(data), "seed": seed,
            "attack": attack.to_dict(), "attack_store": "crafted once on the classifier alone, stored 8-bit, sent at every "
            "point" if store is not None else None, "sampler": sampler, "sampler_steps": steps if sampler == "ddim" else None,
            "plain": {"t_d": plain[0], "t_plus": plain[1]} if plain is not None else None, "policy_steps": POLICY_STEPS, "curves": curves,
            "runs": runs, "wall_time_s": round(time.time() - start, 2)}
