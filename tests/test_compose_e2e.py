"""`docker compose up`, for real: the commands of docs/link.md's "Docker Compose" section, run in order.

Builds the image, brings the link up, sends 50 frames (all acked, none resent on the clean
channel) while scraping each service's Prometheus endpoint (the frame counters must move), adds
jamming through `exec -T proxy diffusec-proxy attack add jamming`, sees it in the next run's SSIM
and measured SNR and in `stats`, runs the PGD source attack, and tears everything down (`down -v`, also on failure).

Needs a Docker daemon and Compose: v2 (`docker compose`) and v1 (`docker-compose`) each run where
installed; skipped otherwise, with the reason. `.ci/run` installs docker.io and starts dockerd when
it runs as root. Where Docker Hub or PyTorch's index is unreachable, set BASE_IMAGE (made by
scripts/make-base-image.sh) and TORCH_INDEX_URL= (empty) with the torch wheel in ./wheels, as
`.ci/run` does; this test passes the environment on to Compose, and skips (saying how to set them)
where the base image cannot be had or PyTorch's index is out of reach with no wheel in ./wheels.

Takes about 3-4 minutes on 2 busy cores with a fresh image build (about 110 s of it), about
1.5-2 minutes with the image cached.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

from link_support import REPO_ROOT

pytestmark = pytest.mark.slow

DOC = REPO_ROOT / "docs" / "link.md"
PROJECT = "diffusec-e2e"                  # its own Compose project: containers, network and volume
HOST_PORTS = (50052, 50053, 9101, 9102, 9103)
METRICS = {"receiver": (9101, "diffusec_receiver_frames_acked_total"),
           "proxy": (9102, "diffusec_proxy_frames_forwarded_total"),
           "sender": (9103, "diffusec_sender_frames_acked_total")}
TIMEOUT_S = {"build": 1200, "up": 300, "run": 600, "exec": 120, "down": 120}


def _docker_ready() -> str | None:
    """None when a Docker daemon answers; else why not."""
    if shutil.which("docker") is None:
        return "docker is not installed (apt-get install docker.io)"
    try:
        info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                              timeout=30)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer in 30 s"
    if info.returncode:
        return f"no Docker daemon answers ({info.stderr.strip()[-160:]}); start one: dockerd &"
    return None


def _build_inputs_missing() -> str | None:
    """None when the image can be built here; else why not (the base image or torch cannot be had)."""
    base = os.environ.get("BASE_IMAGE") or "python:3.11-slim"
    have = subprocess.run(["docker", "image", "inspect", base], capture_output=True).returncode == 0
    if not have:
        try:
            have = subprocess.run(["docker", "pull", "-q", base], capture_output=True, timeout=120).returncode == 0
        except subprocess.TimeoutExpired:
            have = False
    if not have:
        return (f"base image {base} is not here and cannot be pulled (no Docker Hub?): run .ci/docker-setup "
                f"(root) or scripts/make-base-image.sh, then set BASE_IMAGE")
    index = os.environ.get("TORCH_INDEX_URL", "https://download.pytorch.org/whl/cpu")
    if index and not list((REPO_ROOT / "wheels").glob("torch-*.whl")):
        try:
            urllib.request.urlopen(index, timeout=15).close()
        except OSError:
            return (f"PyTorch's index {index} is out of reach and ./wheels has no torch wheel: put one there "
                    f"and set TORCH_INDEX_URL= (empty), as .ci/docker-setup does")
    return None


def _compose_binaries() -> list:
    """One pytest param per Compose flavour, skipped where that flavour is not installed."""
    v2 = shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True,
                                                   timeout=30).returncode == 0
    v1 = shutil.which("docker-compose")
    return [pytest.param(["docker", "compose"], id="compose-v2",
                         marks=pytest.mark.skipif(not v2, reason="Compose v2 (`docker compose`) not installed")),
            pytest.param(["docker-compose"], id="compose-v1",
                         marks=pytest.mark.skipif(not v1, reason="Compose v1 (`docker-compose`) not installed"))]


def doc_commands() -> list[list[str]]:
    """The `docker compose ...` lines of docs/link.md's "Docker Compose" section (its first code block), in order."""
    text = DOC.read_text()
    section = text.split("\n## Docker Compose\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"\n\n((?:    .*\n)+)", section).group(1)
    commands = []
    for line in block.splitlines():
        line = line.strip().split("  #", 1)[0].strip()      # drop the trailing comments
        if line.startswith("docker compose "):
            commands.append(shlex.split(line)[2:])
    return commands


def scrape(port: int, name: str) -> float | None:
    """The value of metric ``name`` at 127.0.0.1:``port``/metrics; None when nothing answers yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
            text = reply.read().decode()
    except OSError:
        return None
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


class Scraper(threading.Thread):
    """Polls each service's frame counter every 0.3 s while a sender runs; keeps the distinct values seen."""

    def __init__(self):
        super().__init__(daemon=True)
        self.seen = {service: [] for service in METRICS}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for service, (port, name) in METRICS.items():
                value = scrape(port, name)
                if value is not None and (not self.seen[service] or self.seen[service][-1] != value):
                    self.seen[service].append(value)
            self.done.wait(0.3)


def last_json(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON line in:\n{stdout[-2000:]}"
    return json.loads(lines[-1])


def wait_healthy(ps, timeout_s: float = 180.0) -> None:
    """Poll ``ps()`` (the `compose ps` table) until receiver and proxy both report healthy.

    `up -d` returns once the proxy has started (it waited for a healthy receiver), while the
    proxy's own check may still be starting.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        table = ps()
        rows = [line for line in table.splitlines() if "_receiver_" in line or "_proxy_" in line
                or "-receiver-" in line or "-proxy-" in line]
        if len(rows) == 2 and all("(healthy)" in row for row in rows):
            return
        assert "unhealthy" not in table and time.monotonic() < deadline, f"not healthy in {timeout_s:.0f} s:\n{table}"
        time.sleep(2)


@pytest.fixture(scope="module")
def docker_or_skip():
    reason = _docker_ready() or _build_inputs_missing()
    if reason:
        pytest.skip(reason)
    taken = [port for port in HOST_PORTS if _port_taken(port)]
    if taken:
        pytest.skip(f"127.0.0.1 ports {taken} are taken (a compose link already up? `docker compose down`)")


def _port_taken(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("binary", _compose_binaries())
def test_docs_compose_section_end_to_end(binary, docker_or_skip):
    env = {**os.environ, "COMPOSE_PROJECT_NAME": PROJECT}
    env.pop("DIFFUSEC_DATA", None)   # as a new user: no data folder, the named volume (the embedded sample)

    def compose(args: list[str], kind: str, check: bool = True) -> subprocess.CompletedProcess:
        started = time.monotonic()
        done = subprocess.run([*binary, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT_S[kind])
        print(f"+ {' '.join(binary + args)}  ({time.monotonic() - started:.1f} s, exit {done.returncode})")
        if check:
            assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done

    commands = doc_commands()
    assert [c[0] for c in commands] == ["build", "up", "run", "exec", "run", "exec", "run", "down"], commands
    senders = []
    try:
        for args in commands:
            verb = args[0]
            if verb == "run" and "--service-ports" in args:
                scraper = Scraper()
                scraper.start()
                try:
                    senders.append(last_json(compose(args, "run").stdout))
                finally:
                    scraper.done.set()
                    scraper.join(5)
                for service, values in scraper.seen.items():
                    # Moving: different values seen during the run (the sender's endpoint ends with it).
                    assert len(values) >= 2 and values[-1] > values[0], (service, values)
                for service in ("receiver", "proxy"):
                    port, name = METRICS[service]
                    assert scrape(port, name) == 50, service
            elif verb == "run":
                senders.append(last_json(compose(args, "run").stdout))
            elif verb == "exec" and "stats" in args:
                stats = last_json(compose(args, "exec").stdout)
            else:
                compose(args, verb if verb in TIMEOUT_S else "exec")
            if verb == "up":
                wait_healthy(lambda: compose(["ps"], "exec").stdout)
    finally:
        compose(["down", "-v", "--remove-orphans"], "down", check=False)

    clean, jammed, attacked = senders
    for report in senders:
        assert report["frames_acked"] == report["n"] == 50, report
    assert clean["frames_resent"] == 0, clean                  # clean channel: nothing presumed lost
    # The jamming added by `exec -T proxy ... attack add jamming` after the clean run hit every frame of the next.
    assert stats["frames_jammed"] == 50 and stats["effective_snr_db"] < stats["snr_db"] - 5, stats
    assert jammed["snr_db"] < clean["snr_db"] - 5, (clean["snr_db"], jammed["snr_db"])
    assert jammed["ssim"] < clean["ssim"] - 0.02, (clean["ssim"], jammed["ssim"])
    assert attacked["source_attack"]["kind"] == "pgd" and attacked["attack_success_rate"] is not None, attacked
    # Torn down: nothing of the project is left running.
    left = subprocess.run(["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"],
                          capture_output=True, text=True, timeout=30).stdout.split()
    assert not left, left
