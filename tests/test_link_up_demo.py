"""`diffusec up`, `demo`, `health` and the process machinery under them (real processes, loopback).

Untrained checkpoints and t_D = 2 keep it fast: what is tested is bring-up, shutdown and the
reports, not accuracy.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner

from diffusec.cli import main as diffusec
from link import health
from link.demo import table
from link.procs import ProcessGroup
from link_support import ENV, REPO_ROOT, free_port, make_untrained_checkpoints


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return make_untrained_checkpoints(tmp_path_factory.mktemp("ckpt"))


def gone(pid: int) -> bool:
    """True when no process ``pid`` exists (a zombie still counts as existing: nobody reaped it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def wait_gone(pids, timeout_s: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not all(gone(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if not gone(p)]


def read_lines(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


def test_up_serves_then_stops_cleanly_on_sigterm(checkpoints):
    proc = subprocess.Popen([sys.executable, "-m", "diffusec", "up", "--checkpoints", str(checkpoints),
                             "--threads", "1", "--t-d", "2", "--snr-db", "9", "--json"],
                            cwd=REPO_ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = queue.Queue(), queue.Queue()
    threading.Thread(target=read_lines, args=(proc.stdout, out), daemon=True).start()
    threading.Thread(target=read_lines, args=(proc.stderr, err), daemon=True).start()
    pids = []
    try:
        line = out.get(timeout=120)
        assert line, "diffusec up exited before printing its addresses"
        info = json.loads(line)
        pids = list(info["pids"].values())
        assert set(info) >= {"receiver", "proxy", "control", "pids"} and info["snr_db"] == 9.0
        for key in ("receiver", "proxy", "control"):
            assert info[key].startswith("127.0.0.1:") and health.check(info[key]) == "SERVING"
        assert not any(gone(p) for p in pids)
        # The proxy CLI drives the proxy that `up` started.
        stats = subprocess.run([sys.executable, "-m", "channel_proxy.cli", "--control", info["control"], "stats",
                                "--json"], cwd=REPO_ROOT, env=ENV, capture_output=True, text=True, timeout=60)
        assert json.loads(stats.stdout)["snr_db"] == 9.0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert wait_gone(pids) == [], "children of `diffusec up` outlived it"
    logged = []
    while (item := err.get(timeout=5)) is not None:
        logged.append(item)
    text = "".join(logged)
    assert "[receiver] " in text and "[proxy] " in text and "[up] stopped: proxy exit 0, receiver exit 0" in text


def test_up_reports_a_service_that_cannot_start(tmp_path):
    result = CliRunner().invoke(diffusec, ["up", "--checkpoints", str(tmp_path / "none"),
                                                           "--threads", "1"])
    assert result.exit_code == 1
    assert "the link did not come up: receiver exited with status 2" in result.stderr
    assert "codec" in result.stderr  # the receiver's own message about the missing checkpoint


def test_children_die_with_a_killed_parent(tmp_path):
    """PR_SET_PDEATHSIG: SIGKILL the process that started them, and they end too."""
    script = ("import sys, time\nfrom link.procs import ProcessGroup\ng = ProcessGroup(None)\n"
              "c = g.spawn('sleeper', [sys.executable, '-c', 'import time; time.sleep(120)'])\n"
              "print(c.proc.pid, flush=True)\ntime.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT, env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert not gone(child)
        parent.kill()
        parent.wait()
        assert wait_gone([child], 10) == []
    finally:
        if parent.poll() is None:
            parent.kill()


def test_process_group_prefixes_logs_and_kills_what_ignores_sigterm():
    lines = []
    group = ProcessGroup(lines.append)
    stubborn = group.spawn("stubborn", [sys.executable, "-c", "import signal, time; "
                                        "signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
                                        "time.sleep(60)"])
    group.spawn("quick", [sys.executable, "-c", "print('hello'); print('bye')"])
    deadline = time.monotonic() + 30
    while ("[stubborn] ready" not in lines or group.dead() is None) and time.monotonic() < deadline:
        time.sleep(0.02)
    message = group.dead()
    assert message and message.startswith("quick exited with status 0") and "bye" in message
    codes = group.stop(timeout_s=1.0)
    assert codes == {"quick": 0, "stubborn": -signal.SIGKILL}
    assert "[quick] hello" in lines and gone(stubborn.proc.pid)


def test_health_command():
    dead = f"127.0.0.1:{free_port()}"
    result = CliRunner().invoke(diffusec, ["health", dead])
    assert result.exit_code == 1 and "UNAVAILABLE" in result.output
    probe = subprocess.run([sys.executable, "-m", "link.health", dead], cwd=REPO_ROOT, env=ENV,
                           capture_output=True, text=True, timeout=60)
    assert probe.returncode == 1 and "UNAVAILABLE" in probe.stdout


def test_demo_runs_every_scenario(checkpoints):
    # --seed 1: the proxy's first loss draws fall below 0.2, so 'drop' loses frames even with n = 6.
    result = CliRunner().invoke(diffusec, [
        "demo", "--checkpoints", str(checkpoints), "--n", "6", "--t-d", "2", "--threads", "1", "--seed", "1",
        "--data", "sample", "--ack-timeout", "0.5", "--sync-every", "3", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    rows = {row["scenario"]: row for row in report["scenarios"]}
    assert list(rows) == ["clean", "awgn-low", "jamming", "drop"]
    for row in rows.values():
        assert row["frames_sent"] == row["frames_acked"] == 6
        assert 0 <= row["accuracy"] <= 1 and 0 <= row["ssim"] <= 1 and row["sync_count"] == 2
    assert abs(rows["clean"]["measured_snr_db"] - 15) < 1 and abs(rows["awgn-low"]["measured_snr_db"] + 3) < 1
    assert abs(rows["jamming"]["measured_snr_db"] - rows["jamming"]["effective_snr_db"]) < 1
    assert rows["drop"]["frames_dropped"] > 0 and rows["drop"]["frames_resent"] >= rows["drop"]["frames_dropped"]
    assert report["sync_count"] == 8 and report["sync_p50_ms"] > 0
    assert "scenario 4/4 drop" in result.stderr


def test_demo_table_and_bad_scenario(checkpoints):
    row = {"scenario": "clean", "channel": "AWGN 15 dB", "measured_snr_db": 15.04, "accuracy": 0.9, "ssim": None,
           "frames_acked": 3, "frames_sent": 3, "frames_resent": 0, "frames_dropped": 0, "images_per_s": 2.0}
    text = table([row])
    assert "acked/sent" in text.splitlines()[0] and "3/3" in text and " - " in text
    result = CliRunner().invoke(diffusec, ["demo", "--checkpoints", str(checkpoints), "--scenario", "nope"])
    assert result.exit_code == 2 and "unknown scenario nope" in result.output


def test_stack_picks_new_ports_when_a_free_port_is_taken_before_the_bind(checkpoints, monkeypatch):
    """free_port() -> bind is a race; the services refuse a port in use, so the stack retries."""
    import socket

    from link import stack as stack_module
    from link.stack import LinkStack, StackConfig

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]
    picks = iter([busy])
    real = stack_module.free_port
    monkeypatch.setattr(stack_module, "free_port", lambda host: next(picks, None) or real(host))
    try:
        with LinkStack(StackConfig(checkpoints=str(checkpoints), t_d=2, threads=1), sink=None) as running:
            assert not running.addresses.receiver.endswith(f":{busy}")
            health.wait_serving(running.addresses.proxy, 10)
    finally:
        taken.close()
