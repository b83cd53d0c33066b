"""Checkpoints: ``<dir>/<kind>.pt`` (weights + preset) with a ``<kind>.json`` manifest beside it.

A manifest says how the weights were made: preset, data and its checksum, seed, command,
commit, wall time and the metrics measured at the end of training.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from .data.paths import REPO_ROOT

KINDS = ("codec", "denoiser", "classifier")


class CheckpointError(FileNotFoundError):
    """A checkpoint is missing or unreadable; the message says which command makes it."""


def default_checkpoint_dir(preset: str) -> Path:
    root = os.environ.get("DIFFUSEC_CHECKPOINTS")
    return Path(root) / preset if root else REPO_ROOT / "checkpoints" / preset


def resolve_checkpoint_dir(preset: str, given: str | Path | None = None) -> Path:
    """The checkpoint folder a command uses: ``given`` (--checkpoints) if set, else the preset's default."""
    return Path(given) if given else default_checkpoint_dir(preset)


def checkpoint_md5s(directory: Path, names: tuple[str, ...]) -> dict[str, str]:
    """md5 of each file in ``names`` found in ``directory`` ({name: hex}): the key of results cached on those weights."""
    paths = [Path(directory) / name for name in names]
    return {path.name: hashlib.md5(path.read_bytes()).hexdigest() for path in paths if path.exists()}


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (head or "unknown") + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def save_checkpoint(directory: Path, kind: str, state_dict: dict, preset_name: str, manifest: dict) -> Path:
    """Atomically write ``kind.pt`` and ``kind.json`` under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{kind}.pt"
    tmp = path.with_suffix(".pt.tmp")
    torch.save({"kind": kind, "preset": preset_name, "state_dict": state_dict}, tmp)
    os.replace(tmp, path)
    full = {
        "kind": kind,
        "preset": preset_name,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "commit": git_commit(),
        "torch": torch.__version__,
        "size_bytes": path.stat().st_size,
        **manifest,
    }
    (directory / f"{kind}.json").write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
    return path


def load_checkpoint(directory: Path, kind: str, preset_name: str) -> dict:
    """Return the saved ``state_dict`` of ``kind``; a clear error when missing or mismatched."""
    path = Path(directory) / f"{kind}.pt"
    make = {"codec": "joint", "denoiser": "denoiser", "classifier": "classifier",
            "classifier_at": "classifier --adversarial"}.get(kind, kind)
    if not path.exists():
        raise CheckpointError(
            f"no {kind} checkpoint at {path}. Train it with `diffusec train {make} --preset {preset_name}` "
            f"(or `diffusec train all`), or point --checkpoints at a folder that has {kind}.pt.")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt file
        # Only torch's first line: its advice to retry with weights_only=False would run arbitrary code
        # from an untrusted file.
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f"cannot read {path} ({type(err).__name__}: {reason}); the file is damaged or not a "
                              f"DiffuSeC checkpoint. Re-train with `diffusec train {make}`, or copy it again.") from err
    if blob.get("preset") != preset_name:
        raise CheckpointError(f"{path} was trained for preset {blob.get('preset')!r}, not {preset_name!r}; "
                              f"use --preset {blob.get('preset')} or another --checkpoints folder.")
    return blob["state_dict"]


def read_manifest(directory: Path, kind: str) -> dict:
    path = Path(directory) / f"{kind}.json"
    return json.loads(path.read_text()) if path.exists() else {}
