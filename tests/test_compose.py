"""docker-compose.yml: valid for `docker-compose config`, with the link services, health checks and profiles.

No Docker engine runs here; `docker-compose config` only parses and validates. Skips when the
`docker-compose` binary (Debian package docker-compose) is absent.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from link_support import REPO_ROOT

COMPOSE = shutil.which("docker-compose")
pytestmark = pytest.mark.skipif(COMPOSE is None, reason="docker-compose not installed (apt-get install docker-compose)")


def compose(*args: str) -> str:
    # The file as a user without DIFFUSEC_DATA sees it (the host's data folder would change the volumes).
    env = {k: v for k, v in os.environ.items() if k != "DIFFUSEC_DATA"}
    result = subprocess.run([COMPOSE, "-f", str(REPO_ROOT / "docker-compose.yml"), *args], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def load_yaml(text: str) -> dict:
    """Parse YAML with PyYAML: here if installed, else with docker-compose's own Python (which has it)."""
    try:
        import yaml

        return yaml.safe_load(text)
    except ImportError:
        pass
    first = open(COMPOSE, "rb").readline().decode(errors="replace")
    if not (first.startswith("#!") and "python" in first):
        pytest.skip("no PyYAML to read the normalised file")
    python = first[2:].strip().split()
    out = subprocess.run([*python, "-c", "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"],
                         input=text, capture_output=True, text=True, timeout=60)
    if out.returncode:
        pytest.skip(f"docker-compose's Python cannot parse YAML: {out.stderr[-200:]}")
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def config() -> dict:
    compose("config", "-q")
    return load_yaml(compose("config"))


def test_services_and_profiles():
    assert set(compose("config", "--services").split()) == {"eval", "receiver", "proxy", "sender"}
    # A bare `up` starts only the link: the sender and eval run on demand, each behind its profile.
    assert sorted(compose("config", "--profiles").split()) == ["eval", "sender"]


def test_link_services_run_their_cli_with_health_checks(config):
    tomllib = pytest.importorskip("tomllib")
    services = config["services"]
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    # The entrypoint holds the fixed part (program, verb, addresses), so `run --rm sender --n 50` only
    # replaces the options in `command`.
    for name, entrypoint, verb in (("receiver", "diffusec-receiver", "serve"), ("proxy", "diffusec-proxy", "serve"),
                                   ("sender", "diffusec-sender", "run"), ("eval", "diffusec", "eval")):
        service = services[name]
        assert service["entrypoint"][:2] == [entrypoint, verb] and entrypoint in scripts
        assert not any(arg in service["command"] for arg in ("serve", "run", "eval"))
        assert service["build"]["context"] == str(REPO_ROOT)
        assert set(service["build"]["args"]) == {"BASE_IMAGE", "TORCH_INDEX_URL"}
    for name, ports in (("receiver", ["50051"]), ("proxy", ["50052", "50053"])):
        test = " ".join(services[name]["healthcheck"]["test"])
        assert "link.health" in test and all(f"127.0.0.1:{port}" in test for port in ports)
    proxy = services["proxy"]
    assert "receiver:50051" in proxy["entrypoint"]
    assert proxy["depends_on"]["receiver"]["condition"] == "service_healthy"
    # `docker compose exec proxy diffusec-proxy attack ...` reaches the control port without --control.
    assert proxy["environment"]["DIFFUSEC_PROXY_CONTROL"] == "127.0.0.1:50053"
    assert "0.0.0.0:50053" in proxy["entrypoint"]
    sender = services["sender"]
    assert sender["profiles"] == ["sender"] and "proxy:50052" in sender["entrypoint"]
    assert sender["depends_on"]["proxy"]["condition"] == "service_healthy"
    assert services["eval"]["profiles"] == ["eval"]


def _port(entry) -> tuple[str, int]:
    """A normalised port -> (host ip, container port): v2 writes mappings, v1 "IP:HOST:CONTAINER"."""
    if isinstance(entry, dict):
        return entry.get("host_ip", ""), int(entry["target"])
    ip, _, target = entry.rsplit(":", 2) if entry.count(":") == 2 else ("", "", entry.rsplit(":", 1)[-1])
    return ip, int(target.split("/")[0])     # "9101/tcp"


def _volume(entry) -> tuple[str, str, str]:
    """A normalised volume -> (type, source, target): v2 writes mappings, v1 "SOURCE:TARGET:MODE"."""
    if isinstance(entry, dict):
        return entry["type"], entry["source"], entry["target"]
    source, target = entry.split(":")[:2]
    return ("bind" if source.startswith(("/", ".")) else "volume"), source, target


def test_ports_are_published_on_loopback_only(config):
    """gRPC and metrics ports reach the host's 127.0.0.1, never its other interfaces."""
    published = {}
    for name in ("receiver", "proxy", "sender"):
        for entry in config["services"][name]["ports"]:
            ip, target = _port(entry)
            assert ip == "127.0.0.1", (name, entry)
            published[target] = name
    assert published == {50052: "proxy", 50053: "proxy", 9101: "receiver", 9102: "proxy", 9103: "sender"}
    for name, port in (("receiver", 9101), ("proxy", 9102), ("sender", 9103)):
        assert f"0.0.0.0:{port}" in config["services"][name]["entrypoint"]


def test_data_volume_without_a_data_folder(config):
    """Unset DIFFUSEC_DATA mounts a named volume, not ./data (which Docker would create empty and root-owned)."""
    assert "diffusec-data" in config["volumes"]
    for name in ("sender", "eval"):
        (volume,) = config["services"][name]["volumes"]
        assert _volume(volume) == ("volume", "diffusec-data", "/data")


def test_dockerfile_copies_every_package():
    tomllib = pytest.importorskip("tomllib")
    include = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = set(re.findall(r"^COPY (\w+) \./\1$", (REPO_ROOT / "Dockerfile").read_text(), re.MULTILINE))
    assert copied, "the Dockerfile's COPY lines changed form; update this test"
    assert {pattern.rstrip("*") for pattern in include} <= copied


def test_health_probe_module_is_light():
    """The containers' probe must not load torch (seconds on a busy machine)."""
    code = "import sys, link.health; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, timeout=60).returncode == 0
