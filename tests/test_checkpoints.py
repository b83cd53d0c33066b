"""Checkpoints: round trip with a manifest, and clear errors that name the command to run."""
from __future__ import annotations

import json
import sys

import pytest
import torch

from shared.checkpoints import (CheckpointError, default_checkpoint_dir, load_checkpoint, read_manifest,
                                save_checkpoint)


def small_state() -> dict:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).state_dict()


def test_round_trip_and_manifest(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/usr/bin/diffusec", "train", "classifier", "--max-steps", "3"])
    state = small_state()
    path = save_checkpoint(tmp_path / "ck", "classifier", state, "cifar10",
                           {"metrics": {"val_accuracy": 0.5}, "data": "tiny", "seed": 3})
    assert path == tmp_path / "ck" / "classifier.pt" and path.exists()
    assert not list((tmp_path / "ck").glob("*.tmp"))
    loaded = load_checkpoint(tmp_path / "ck", "classifier", "cifar10")
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)

    manifest = json.loads((tmp_path / "ck" / "classifier.json").read_text())
    assert manifest == read_manifest(tmp_path / "ck", "classifier")
    assert manifest["preset"] == "cifar10" and manifest["kind"] == "classifier"
    assert manifest["command"] == "diffusec train classifier --max-steps 3"
    assert manifest["metrics"] == {"val_accuracy": 0.5}
    assert manifest["data"] == "tiny" and manifest["seed"] == 3
    assert manifest["commit"] and isinstance(manifest["commit"], str)
    assert manifest["size_bytes"] == path.stat().st_size
    assert manifest["torch"] == torch.__version__ and manifest["created"]


def test_read_manifest_missing_is_empty(tmp_path):
    assert read_manifest(tmp_path, "codec") == {}


@pytest.mark.parametrize("kind, command", [("classifier", "diffusec train classifier"),
                                           ("codec", "diffusec train joint"),
                                           ("denoiser", "diffusec train denoiser")])
def test_missing_checkpoint_names_train_command(tmp_path, kind, command):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path, kind, "fmnist")
    message = str(info.value)
    assert command in message and "--preset fmnist" in message and str(tmp_path) in message
    assert isinstance(info.value, FileNotFoundError)


def test_preset_mismatch_raises(tmp_path):
    save_checkpoint(tmp_path, "codec", small_state(), "cifar10", {})
    with pytest.raises(CheckpointError, match="cifar10"):
        load_checkpoint(tmp_path, "codec", "paper-cifar10")


@pytest.mark.parametrize("content", [b"", b"not a torch file at all", b"PK\x03\x04garbage"])
def test_corrupt_file_raises_checkpoint_error(tmp_path, content):
    (tmp_path / "denoiser.pt").write_bytes(content)
    with pytest.raises(CheckpointError, match="diffusec train denoiser") as err:
        load_checkpoint(tmp_path, "denoiser", "cifar10")
    assert "weights_only=False" not in str(err.value)  # torch's advice would run code from an untrusted file


def test_truncated_checkpoint_raises_checkpoint_error(tmp_path):
    path = save_checkpoint(tmp_path, "classifier", small_state(), "cifar10", {})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path, "classifier", "cifar10")


def test_default_checkpoint_dir_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFUSEC_CHECKPOINTS", str(tmp_path))
    assert default_checkpoint_dir("fmnist") == tmp_path / "fmnist"
    monkeypatch.delenv("DIFFUSEC_CHECKPOINTS")
    assert default_checkpoint_dir("fmnist").parts[-2:] == ("checkpoints", "fmnist")
