"""Helpers for the link tests: untrained checkpoints, real service processes on loopback ports."""
from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from link.health import wait_serving
from protos.serving import free_port
from shared.checkpoints import save_checkpoint
from shared.models.classifier import Classifier
from shared.models.codec import Codec
from shared.models.unet import UNet
from shared.presets import get_preset

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "DIFFUSEC_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


_UNTRAINED_SOURCES: dict[str, Path] = {}


def _untrained_source(preset_name: str) -> Path:
    """The one folder of random-weight ``preset_name`` models this test process saves (removed at exit)."""
    if preset_name not in _UNTRAINED_SOURCES:
        source = Path(tempfile.mkdtemp(prefix=f"diffusec-untrained-{preset_name}-"))
        atexit.register(shutil.rmtree, source, True)
        torch.manual_seed(0)
        preset = get_preset(preset_name)
        for kind, model in (("codec", Codec(preset.codec)), ("denoiser", UNet(preset.denoiser)),
                            ("classifier", Classifier(preset.classifier))):
            save_checkpoint(source, kind, model.state_dict(), preset_name, {"metrics": {}})
        _UNTRAINED_SOURCES[preset_name] = source
    return _UNTRAINED_SOURCES[preset_name]


def make_untrained_checkpoints(out: Path, preset_name: str = "cifar10") -> Path:
    """Random-weight models of ``preset_name`` in ``out``, saved the way training saves them.

    The weights (32 MB for cifar10) are saved once per process and hard-linked into each ``out``, so the
    suite's many checkpoint folders share one set of disk blocks: a CI disk near full failed the suite when
    every folder held its own copy. Writers replace checkpoints atomically (a new file), never in place, so a
    link cannot leak a change to another test; the small manifests are copied, as ``save_checkpoint``
    rewrites them in place.
    """
    out.mkdir(parents=True, exist_ok=True)
    for file in _untrained_source(preset_name).iterdir():
        target = out / file.name
        target.unlink(missing_ok=True)
        if file.suffix == ".pt":
            try:
                os.link(file, target)
                continue
            except OSError:   # another file system, or no hard links there: copy
                pass
        shutil.copy2(file, target)
    return out


class Service:
    """A service subprocess (``python -m <module> ...``) with its log in a file; stop() always reaps it."""

    def __init__(self, name: str, args: list[str], log_dir: Path):
        self.name, self.args = name, args
        self.log = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Service":
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, *self.args], cwd=REPO_ROOT, env=ENV, stdout=log,
                                         stderr=subprocess.STDOUT)
        return self

    def wait_healthy(self, address: str, timeout_s: float = 60.0) -> None:
        try:
            wait_serving(address, timeout_s,
                         alive=lambda: None if self.proc.poll() is None else f"{self.name} exited ({self.proc.returncode})")
        except (TimeoutError, RuntimeError) as err:
            raise TimeoutError(f"{err}\n--- {self.name} log ---\n{self.log.read_text()}") from None

    def kill(self) -> None:
        """SIGKILL: a crash, no goodbye."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def receiver_service(port: int, checkpoints: Path, log_dir: Path, *extra: str) -> Service:
    return Service(f"receiver-{port}", ["-m", "receiver.cli", "serve", "--listen", f"127.0.0.1:{port}",
                                         "--checkpoints", str(checkpoints), "--threads", "1", *extra], log_dir)


def proxy_service(port: int, upstream: int, control: int, log_dir: Path, *extra: str) -> Service:
    return Service("proxy", ["-m", "channel_proxy.cli", "serve", "--listen", f"127.0.0.1:{port}",
                             "--upstream", f"127.0.0.1:{upstream}", "--control", f"127.0.0.1:{control}",
                             "--threads", "1", *extra], log_dir)


def sender_command(to: str, checkpoints: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "sender.cli", "run", "--to", to, "--checkpoints", str(checkpoints),
            "--data", "sample", "--threads", "1", "--json", *args]


def last_json(stdout: str) -> dict:
    lines = [line for line in stdout.strip().splitlines() if line.strip()]
    assert lines, "no output"
    return json.loads(lines[-1])


__all__ = ["ENV", "REPO_ROOT", "Service", "free_port", "last_json", "make_untrained_checkpoints", "proxy_service",
           "receiver_service", "sender_command"]
