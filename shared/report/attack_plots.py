"""PNG plots of an attack sweep (:mod:`.attack_sweep`; matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

from pathlib import Path

from ..attacks.budget import format_eps
from .attack_sweep import SweepResult

SYSTEM_LABEL = {"vit": "undefended link (vit)", "plain": "DiffuSeC (plain)", "classifier": "classifier alone"}
PNR_AXIS = "perturbation-to-noise ratio PNR (dB)"
SYSTEM_COLOR = {"vit": "tab:red", "plain": "tab:blue", "classifier": "tab:gray"}


def _title(result: SweepResult, what: str) -> str:
    snr = result.config["snr_db"]
    # result.data names the data set as loaded, e.g. "CIFAR-10 (JPEG q75 copy), test split, 64 images (seed 0)"
    return f"{what}, SNR {snr:g} dB\npreset {result.preset}: {result.data}"


def plot_sweep(result: SweepResult, out_dir: str | Path) -> dict[str, str]:
    """Write pnr.png (a), multi_domain.png (b) and strength.png (c) under ``out_dir``; name -> path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}

    def save(fig, ax, name: str, xlabel: str, ylabel: str, title: str) -> None:
        ax.set(xlabel=xlabel, ylabel=ylabel, ylim=(-0.02, 1.02))
        ax.set_title(_title(result, title), fontsize=9.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1, frameon=False)
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths[name] = str(path)

    fig, ax = plt.subplots(figsize=(6.8, 6.4))
    for system, curve in result.pnr.items():
        color = SYSTEM_COLOR.get(system)
        ax.plot(curve["pnr_db"], curve["adversarial"], "o-", color=color, label=f"{SYSTEM_LABEL[system]}: adversarial")
        ax.plot(curve["pnr_db"], curve["jamming"], "s--", color=color, label=f"{SYSTEM_LABEL[system]}: jamming")
        ax.axhline(result.baseline[system], color=color, lw=0.8, ls=":", label=f"{SYSTEM_LABEL[system]}: no attack")
    save(fig, ax, "pnr", PNR_AXIS, "classifier accuracy", "Wireless attack: adversarial vs jamming")

    fig, ax = plt.subplots(figsize=(6.8, 6.4))
    for system, curve in result.multi_domain.items():
        color = SYSTEM_COLOR.get(system)
        eps = format_eps(curve["source_eps"])
        ax.plot(curve["pnr_db"], curve["wireless_only"], "o--", color=color, label=f"{SYSTEM_LABEL[system]}: wireless only")
        ax.plot(curve["pnr_db"], curve["multi_domain"], "^-", color=color,
                label=f"{SYSTEM_LABEL[system]}: multi-domain (source eps {eps} + wireless)")
        ax.axhline(curve["source_only"], color=color, lw=0.8, ls=":", label=f"{SYSTEM_LABEL[system]}: source eps {eps} only")
    save(fig, ax, "multi_domain", PNR_AXIS, "classifier accuracy", "Multi-domain attack (source + wireless)")

    fig, ax = plt.subplots(figsize=(6.8, 6.4))
    kind = result.config["source_kind"].upper()
    for system, curve in result.strength.items():
        color = SYSTEM_COLOR.get(system)
        rates = {k: [float("nan") if v is None else v for v in curve[k]] for k in ("non_targeted", "targeted")}
        ax.plot(curve["eps"], rates["non_targeted"], "o-", color=color, label=f"{SYSTEM_LABEL[system]}: non-targeted")
        ax.plot(curve["eps"], rates["targeted"], "s--", color=color,
                label=f"{SYSTEM_LABEL[system]}: targeted (class {curve['target']})")
    save(fig, ax, "strength", "source perturbation strength eps (l_inf, [0, 1] pixel units)", "attack success rate",
         f"Source {kind} attack success vs strength")
    return paths
