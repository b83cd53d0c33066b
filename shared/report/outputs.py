"""The files the experiments leave in their ``--out`` folder, written in one place each.

- ``diffusec report``: results.json, results.md and the results-*.png figures;
- ``diffusec eval attacks``: attacks.json and the plots pnr.png, multi_domain.png, strength.png;
- ``diffusec eval adaptation``: adaptation.json and adaptation.png.

Each writer returns the object it wrote as JSON, which the command prints with --json.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..agent.plots import plot_adaptation
from ..checkpoints import git_commit
from . import figures, tables
from .attack_plots import plot_sweep
from .attack_sweep import SweepResult
from .sweep import Report


def write_report(result: Report, out_dir: str | Path, command: str) -> dict:
    """results.json, results.md (recording ``command`` and the git commit) and the figures -> results.json's object."""
    out = Path(out_dir)
    payload = result.to_dict()
    commit = git_commit()
    payload.update(command=command, commit=commit)
    names = figures.write_figures(payload, result.figure, out)
    payload["figures"] = names
    (out / "results.json").write_text(json.dumps(payload, indent=1) + "\n")
    (out / "results.md").write_text(tables.markdown(payload, command, commit, names) + "\n")
    return payload


def write_attack_sweep(result: SweepResult, out_dir: str | Path) -> dict:
    """attacks.json and the three plots -> attacks.json's object (with the plots' paths)."""
    out = Path(out_dir)
    payload = result.to_dict()
    payload["plots"] = plot_sweep(result, out)
    (out / "attacks.json").write_text(json.dumps(payload, indent=1) + "\n")
    return payload


def write_adaptation(result: dict, out_dir: str | Path) -> dict:
    """adaptation.png and adaptation.json (:func:`shared.agent.evaluate.run_adaptation`'s result, with the
    plot's path added to ``result``) -> the JSON's object."""
    out = Path(out_dir)
    result["plot"] = plot_adaptation(result, out / "adaptation.png")
    out.mkdir(parents=True, exist_ok=True)
    (out / "adaptation.json").write_text(json.dumps(result, indent=1) + "\n")
    return result
