"""PNG plots of the agent: training curves (the paper's Fig. 4) and robust accuracy vs SNR (Fig. 5a)."""
from __future__ import annotations

from pathlib import Path

SNR_COLORS = {-3.0: "tab:red", 3.0: "tab:orange", 9.0: "tab:green", 15.0: "tab:blue"}
PANELS = (("reward", "reward R, eq. 31 (unitless, max 0)", "(a) reward"),
          ("ssim", "SSIM(x, x_final), eq. 26 (0..1)", "(b) SSIM score"),
          ("adv", "Adv, eq. 27 (sqrt of a rate, 0..1)", "(c) adversarial error rate"),
          ("err", "Err, eq. 29 (sqrt of a rate, 0..1)", "(d) purification error rate"))


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_training(curves: list[dict], out_path: str | Path, learning_starts: int, title: str) -> str:
    """Four panels against the training step, one line per evaluation SNR (plus the mean reward)."""
    plt = _plt()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.2), sharex=True)
    steps = [c["step"] for c in curves]
    snrs = sorted({float(s) for c in curves for s in c["snr"]})
    for ax, (key, ylabel, name) in zip(axes.flat, PANELS):
        for snr in snrs:
            ys = [c["snr"][f"{snr:g}"][key] for c in curves]
            ax.plot(steps, ys, color=SNR_COLORS.get(snr), lw=1.2, label=f"SNR {snr:g} dB")
        if key == "reward":
            ax.plot(steps, [c["mean_reward"] for c in curves], color="black", lw=2, label="mean of the SNRs")
        ax.axvline(learning_starts, color="gray", ls=":", lw=1, label="end of random actions")
        ax.set(ylabel=ylabel, title=name)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("training step (environment steps)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out_path, dpi=120)
    plt.close(fig)
    return str(out_path)


ADAPT_STYLE = {"diffusec": ("DiffuSeC (DDPG, 3 steps from a random state)", "o-", "tab:blue"),
               "table": ("grid oracle (best measured t_D, t_plus per SNR)", "s--", "tab:green"),
               "plain": ("DiffuSeC (plain, t_D = 20, t_plus = 0)", "^-", "tab:red")}


def plot_adaptation(result: dict, out_path: str | Path) -> str:
    plt = _plt()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for system, curve in result["curves"].items():
        label, style, color = ADAPT_STYLE.get(system, (system, "o-", None))
        ax.plot(curve["snr_db"], curve["robust_accuracy"], style, color=color, label=label)
    attack = result["attack"]
    ax.set(xlabel="channel SNR (dB)", ylabel="robust accuracy (fraction correct under attack)", ylim=(-0.02, 1.02))
    ax.set_title(f"Robust accuracy vs SNR: PGD {attack['eps_label']}, {attack['steps']} steps\n"
                 f"preset {result['preset']}, {result['data']}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_path, dpi=120)
    plt.close(fig)
    return str(out_path)
