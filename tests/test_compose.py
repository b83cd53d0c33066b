"""docker-compose.yml: valid for `docker-compose config`, with the link services, health checks and profiles.

No Docker engine runs here; `docker-compose config` only parses and validates. Skips when the
`docker-compose` binary (Debian package docker-compose) is absent.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from link_support import REPO_ROOT

COMPOSE = shutil.which("docker-compose")
pytestmark = pytest.mark.skipif(COMPOSE is None, reason="docker-compose not installed (apt-get install docker-compose)")


def compose(*args: str) -> str:
    result = subprocess.run([COMPOSE, "-f", str(REPO_ROOT / "docker-compose.yml"), *args], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
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
    assert compose("config", "--profiles").split() == ["sender"]


def test_link_services_run_their_cli_with_health_checks(config):
    tomllib = pytest.importorskip("tomllib")
    services = config["services"]
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for name, entrypoint in (("receiver", "diffusec-receiver"), ("proxy", "diffusec-proxy"), ("sender", "diffusec-sender")):
        service = services[name]
        assert service["entrypoint"] == [entrypoint] and entrypoint in scripts
        assert service["build"]["context"] == str(REPO_ROOT)
    for name, ports in (("receiver", ["50051"]), ("proxy", ["50052", "50053"])):
        test = " ".join(services[name]["healthcheck"]["test"])
        assert "link.health" in test and all(f"127.0.0.1:{port}" in test for port in ports)
    proxy = services["proxy"]
    assert "receiver:50051" in proxy["command"]
    assert proxy["depends_on"]["receiver"]["condition"] == "service_healthy"
    # `docker compose exec proxy diffusec-proxy attack ...` reaches the control port without --control.
    assert proxy["environment"]["DIFFUSEC_PROXY_CONTROL"] == "127.0.0.1:50053"
    assert "0.0.0.0:50053" in proxy["command"]
    sender = services["sender"]
    assert sender["profiles"] == ["sender"] and "proxy:50052" in sender["command"]
    assert sender["depends_on"]["proxy"]["condition"] == "service_healthy"
    assert services["eval"]["command"][0] == "eval"


def test_dockerfile_copies_every_package():
    tomllib = pytest.importorskip("tomllib")
    include = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = set(re.findall(r"^COPY (\w+) \./\1$", (REPO_ROOT / "Dockerfile").read_text(), re.MULTILINE))
    assert {pattern.rstrip("*") for pattern in include} <= copied


def test_health_probe_module_is_light():
    """The containers' probe must not load torch (seconds on a busy machine)."""
    code = "import sys, link.health; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, timeout=60).returncode == 0
