"""PNG figures of `diffusec report`: Fig. 5(a)/(b) analogues (one line per system, the paper's
quoted Table II points beside them) and the Fig. 6 image grid."""
from __future__ import annotations

from pathlib import Path

from .tables import PAPER_SNRS_DB, PAPER_TABLE_II

STYLE = {"jpeg-ldpc": ("tab:gray", "s", "--"), "jpeg-ldpc-at": ("tab:brown", "D", "--"), "vit": ("tab:red", "^", "-"),
         "plain": ("tab:blue", "o", "-"), "diffusec": ("tab:green", "*", "-"), "table": ("tab:olive", "x", ":")}
QUOTED_STYLE = {"DiffuSeC (proposal)": ("tab:green", ":"), "Masked VQ-VAE + AT [26]": ("tab:purple", ":")}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def accuracy_vs_snr(result: dict, key: str, path: str | Path, title: str, quote_paper: bool) -> str:
    """Accuracy (``key``: robust_accuracy or standard_accuracy) against SNR, one line per system."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.6, 6.2))
    for system, curve in result["curves"].items():
        color, marker, line = STYLE[system]
        ax.plot(curve["snr_db"], [100 * v for v in curve[key]], marker=marker, ls=line, color=color,
                label=f"{curve['label']} (ours)")
    if quote_paper:
        for name, row in PAPER_TABLE_II.items():
            color, line = QUOTED_STYLE[name]
            ax.plot(PAPER_SNRS_DB, row["robust"], ls=line, color=color, marker=".", alpha=0.7,
                    label=f"{name} (paper, quoted)")
    classifier = result["classifier"]["receiver"]["robust_accuracy" if key == "robust_accuracy" else "clean_accuracy"]
    ax.axhline(100 * classifier, color="black", lw=0.8, ls="-.",
               label="receiver classifier alone, no channel (ours)")
    cfg = result["config"]
    ax.set(xlabel="channel SNR (dB)", ylabel="accuracy (%)", ylim=(0, 100), xticks=cfg["snrs_db"])
    channel = "" if cfg.get("channel", "awgn") == "awgn" else f", {cfg['channel']} fading"
    ax.set_title(f"{title}{channel}\npreset {cfg['preset']}: {result['data']}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


def image_grid(result: dict, figure: dict, path: str | Path) -> str:
    """Fig. 6: for each SNR a row of (clean, attacked, received, purified) for each shown image."""
    plt = _plt()
    rows, k = figure["rows"], len(figure["labels"])
    stages = ("clean", "attacked", "received", "purified")
    fig, axes = plt.subplots(len(rows), 4 * k, figsize=(max(1.35 * 4 * k + 0.8, 6.5), 1.55 * len(rows) + 1.1),
                             squeeze=False)
    classes = figure["classes"]

    def show(ax, image, caption):
        array = image.permute(1, 2, 0).clamp(0, 1).numpy()
        ax.imshow(array.squeeze(-1) if array.shape[-1] == 1 else array, cmap="gray" if array.shape[-1] == 1 else None)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(caption, fontsize=6.5)

    for r, row in enumerate(rows):
        for j in range(k):
            images = (figure["clean"][j], figure["attacked"][j], row["received"][j], row["purified"][j])
            predicted = (figure["clean_predicted"][j], figure["attacked_predicted"][j], None, row["predicted"][j])
            for s, (stage, image, p) in enumerate(zip(stages, images, predicted)):
                ax = axes[r][4 * j + s]
                show(ax, image, "" if p is None else f"-> {classes[p]}")
                if r == 0:
                    true = f"\n(true: {classes[figure['labels'][j]]})" if s == 0 else "\n"
                    ax.set_title(stage + true, fontsize=7.5)
            if j == 0:
                axes[r][0].set_ylabel(f"{row['snr_db']:g} dB\n(t_D {row['t_d']}, t+ {row['t_plus']})", fontsize=7.5)
    cfg = result["config"]
    fig.suptitle(f"DiffuSeC under PGD eps {cfg['eps'] * 255:.0f}/255: clean, attacked, received (decoded, before "
                 f"purification),\npurified; '-> class' = the classifier's decision; preset {cfg['preset']}:\n"
                 f"{result['data']}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return str(path)


def write_figures(result: dict, figure: dict | None, out_dir: Path) -> dict[str, str]:
    """fig5a / fig5b / fig6 PNGs under ``out_dir`` -> name: file name (relative to ``out_dir``)."""
    names = {}
    accuracy_vs_snr(result, "robust_accuracy", out_dir / "results-fig5a-robust.png",
                    "Robust accuracy under PGD (Fig. 5(a) analogue)", quote_paper=True)
    names["fig5a"] = "results-fig5a-robust.png"
    accuracy_vs_snr(result, "standard_accuracy", out_dir / "results-fig5b-standard.png",
                    "Standard accuracy without attack (Fig. 5(b) analogue)", quote_paper=False)
    names["fig5b"] = "results-fig5b-standard.png"
    if figure is not None:
        image_grid(result, figure, out_dir / "results-fig6-images.png")
        names["fig6"] = "results-fig6-images.png"
    return names
