"""A local link: receiver and channel proxy as child processes on loopback ports (``diffusec up``).

    receiver (Link)  <--  proxy (Link, AWGN + impairments)  <--  your sender (diffusec-sender run --to PROXY)
                          proxy control (ChannelControl)    <--  diffusec-proxy --control CONTROL ...

:class:`LinkStack` starts both, waits until the gRPC health service of each address reports
SERVING, and stops them together (see :mod:`link.procs`). Addresses are ``host:port``; SNR in dB.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from protos.serving import free_port
from protos.tls import PLAINTEXT, TlsFiles
from shared.presets import DEFAULT_PRESET

from . import health
from .procs import ProcessGroup, Sink, child_env, stderr_sink


class StackError(RuntimeError):
    """A service did not come up (it exited, or its health check never said SERVING)."""


@dataclass
class StackConfig:
    """How to start the link. Addresses default to free ports on ``host``."""

    preset: str = DEFAULT_PRESET
    checkpoints: str | None = None
    t_d: int = 20                      # fixed policy: diffusing timesteps
    t_plus: int = 0                    # fixed policy: extra denoising steps (t_P = t_D + t_plus)
    snr_db: float = 15.0               # the proxy's initial AWGN SNR
    threads: int | None = None         # torch threads per service (default: theirs)
    seed: int = 0
    host: str = "127.0.0.1"
    receiver: str | None = None        # host:port of each service (None: a free port on host)
    proxy: str | None = None
    control: str | None = None
    receiver_args: tuple[str, ...] = ()   # more `diffusec-receiver serve` options
    proxy_args: tuple[str, ...] = ()      # more `diffusec-proxy serve` options
    log_level: str = "info"
    health_timeout_s: float = 180.0    # model loading on a busy 2-core machine can take a while
    link_key_file: str | None = None   # the receiver's link key (senders need the same one)
    tls_dir: str | None = None         # a `diffusec certs` folder: mutual TLS on every hop

    def client_tls(self) -> TlsFiles:
        """How a client (health checks, a sender, the proxy CLI) talks to these services."""
        if self.tls_dir is None:
            return PLAINTEXT
        d = Path(self.tls_dir)
        return TlsFiles(d / "client.pem", d / "client-key.pem", d / "ca.pem")

    def service_tls_args(self) -> list[str]:
        """The services' --tls-* options: the server certificate (also the proxy's client one)."""
        if self.tls_dir is None:
            return []
        d = Path(self.tls_dir)
        return ["--tls-cert", str(d / "server.pem"), "--tls-key", str(d / "server-key.pem"), "--tls-ca", str(d / "ca.pem")]


@dataclass
class Addresses:
    receiver: str
    proxy: str
    control: str
    pids: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"receiver": self.receiver, "proxy": self.proxy, "control": self.control, "pids": self.pids}


class LinkStack:
    """Receiver + proxy children. ``with LinkStack(cfg) as stack: stack.addresses.proxy ...``."""

    def __init__(self, config: StackConfig, sink: Sink | None = stderr_sink):
        self.config = config
        self.group = ProcessGroup(sink)
        self.addresses: Addresses | None = None

    def commands(self, addresses: Addresses) -> dict[str, list[str]]:
        """The command line of each service."""
        cfg = self.config
        threads = ["--threads", str(cfg.threads)] if cfg.threads else []
        receiver = [sys.executable, "-m", "receiver.cli", "serve", "--listen", addresses.receiver,
                    "--preset", cfg.preset, "--t-d", str(cfg.t_d), "--t-plus", str(cfg.t_plus),
                    "--seed", str(cfg.seed), "--log-level", cfg.log_level, *threads]
        if cfg.checkpoints:
            receiver += ["--checkpoints", str(cfg.checkpoints)]
        if cfg.link_key_file:
            receiver += ["--link-key-file", str(cfg.link_key_file)]
        receiver += cfg.service_tls_args()
        # The proxy gets the receiver's preset and checkpoints: an `adversarial` impairment's default
        # surrogate is a copy of the receiver's models (the white-box threat model).
        proxy = [sys.executable, "-m", "channel_proxy.cli", *cfg.service_tls_args(), "serve", "--listen", addresses.proxy,
                 "--upstream", addresses.receiver, "--control", addresses.control, "--snr-db", repr(float(cfg.snr_db)),
                 "--seed", str(cfg.seed), "--log-level", cfg.log_level, "--preset", cfg.preset, *threads]
        if cfg.checkpoints:
            proxy += ["--checkpoints", str(cfg.checkpoints)]
        return {"receiver": receiver + list(cfg.receiver_args), "proxy": proxy + list(cfg.proxy_args)}

    def start(self) -> Addresses:
        """Start both services and wait until every address is SERVING; StackError otherwise."""
        cfg = self.config

        def pick(given: str | None) -> str:
            return given or f"{cfg.host}:{free_port(cfg.host)}"

        env = child_env(cfg.threads)

        def attempt() -> Addresses:
            addresses = Addresses(pick(cfg.receiver), pick(cfg.proxy), pick(cfg.control))
            for name, argv in self.commands(addresses).items():
                self.group.spawn(name, argv, env=env)
            for address in (addresses.receiver, addresses.proxy, addresses.control):
                health.wait_serving(address, cfg.health_timeout_s, alive=self.group.dead, tls=cfg.client_tls())
            return addresses

        auto_ports = not (cfg.receiver and cfg.proxy and cfg.control)   # given addresses are not re-picked
        try:
            addresses = self.group.start(attempt, tries=3 if auto_ports else 1)
        except (RuntimeError, TimeoutError, OSError) as err:
            raise StackError(f"the link did not come up: {err}") from None
        addresses.pids = self.group.pids()
        self.addresses = addresses
        return addresses

    def dead(self) -> str | None:
        """None while both services run; else which one exited and its last output."""
        return self.group.dead()

    def stop(self, timeout_s: float = 10.0) -> dict[str, int]:
        """Stop both (SIGTERM, then SIGKILL after ``timeout_s``) -> {name: exit status}."""
        return self.group.stop(timeout_s)

    def __enter__(self) -> "LinkStack":
        if self.addresses is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
