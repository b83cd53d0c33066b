"""The attacks of issue 17 on a running link, without and with a link key: docs/security.md's table.

    python docs/security/measure.py [--n 200] [--checkpoints checkpoints/cifar10] [--out docs/security/measured.json]

Real processes on loopback: `diffusec up`'s receiver and channel proxy (fixed policy, t_D = 20,
15 dB), a `diffusec-sender run` per row that pollutes its images first (PGD 8/255, 10 steps,
white-box on the receiver's classifier: the paper's source attack), and the proxy CLI that adds
the row's tampering. Each row prints one JSON line: the sender's accuracy, SSIM and refusals, and
what the proxy says it tampered with. With a key, the tampering kinds act on half of the messages
(`--rate 0.5`): at rate 1 no message gets through and the run ends refused (a row shows that too).
The "prefill" row is a second client that syncs under the victim's session id and sends junk
frames with the victim's frame ids before the victim does; "hang-up" one that queues 400 frames
and hangs up, before an honest 50-image run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import grpc  # noqa: E402
import torch  # noqa: E402

from link.stack import LinkStack, StackConfig  # noqa: E402
from protos.diffusec.link.v1 import link_pb2, link_pb2_grpc  # noqa: E402
from protos.wire import symbols_to_bytes  # noqa: E402
from shared.channel import pilot_sequence  # noqa: E402

SOURCE_ATTACK = ["--source-attack", "pgd", "--eps", "8/255", "--attack-steps", "10"]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
ENV.pop("DIFFUSEC_LINK_KEY", None)


def proxy_cli(control: str, *args: str) -> dict | None:
    done = subprocess.run([sys.executable, "-m", "channel_proxy.cli", "--control", control, *args], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout) if "--json" in args else None


def sender_run(proxy: str, checkpoints: str, n: int, key: str | None, session: str, *extra: str) -> dict:
    cmd = [sys.executable, "-m", "sender.cli", "run", "--to", proxy, "--checkpoints", checkpoints, "--n", str(n),
           "--seed", "0", "--sync-every", "20", "--json", "--no-progress", "--session", session, *extra]
    if key:
        cmd += ["--link-key-file", key]
    done = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=1800, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"sender printed no JSON: {done.stderr[-2000:]}")
    return json.loads(lines[-1])


def prefill(proxy: str, session: str, n: int, latent_length: int = 768) -> dict:
    """A second client: Sync under the victim's session, then junk frames with ids 0..n-1 (no key)."""
    with grpc.insecure_channel(proxy) as channel:
        stub = link_pb2_grpc.LinkStub(channel)
        try:
            reply = stub.Sync(link_pb2.SyncRequest(session=session, sequence=10**6, preset="cifar10",
                                                   pilot=symbols_to_bytes(pilot_sequence(session, 10**6, 1024))),
                              timeout=30)
            epoch, t_d = reply.epoch, reply.t_d
        except grpc.RpcError as err:
            epoch, t_d, sync_error = 1, 20, err.code().name
        else:
            sync_error = None
        frames = [link_pb2.Frame(frame_id=i, session=session, epoch=epoch, t_d=t_d, shape=[latent_length],
                                 latent=symbols_to_bytes(torch.randn(latent_length))) for i in range(n)]
        acks = list(stub.Transmit(iter(frames), timeout=600))
    return {"sync_error": sync_error, "junk_accepted": sum(not a.HasField("error") for a in acks),
            "junk_refused": sum(a.HasField("error") for a in acks)}


def hang_up(proxy: str, frames: int = 400, after_s: float = 2.0) -> None:
    """A client that syncs, queues ``frames`` frames and goes away after ``after_s`` seconds."""
    channel = grpc.insecure_channel(proxy)
    stub = link_pb2_grpc.LinkStub(channel)
    reply = stub.Sync(link_pb2.SyncRequest(session="hang-up", sequence=0, preset="cifar10",
                                           pilot=symbols_to_bytes(pilot_sequence("hang-up", 0, 1024))), timeout=30)
    call = stub.Transmit(iter([link_pb2.Frame(frame_id=i, session="hang-up", epoch=reply.epoch, t_d=reply.t_d,
                                              shape=[768], latent=symbols_to_bytes(torch.randn(768)))
                               for i in range(frames)]))
    threading.Timer(after_s, call.cancel).start()
    try:
        for _ in call:
            pass
    except grpc.RpcError:
        pass
    channel.close()


ROWS = [  # (name, tampering CLI args or None, also at rate 1 with a key?)
    ("honest", None, False),
    ("sync-tamper t_d 1", ["sync-tamper", "--t-d", "1"], True),
    ("sync-tamper t_d 0", ["sync-tamper", "--t-d", "0"], False),
    ("frame-tamper t_d 1", ["frame-tamper", "--t-d", "1"], True),
    ("ack-forge", ["ack-forge"], True),
]


def tampered(stats: dict) -> int:
    return stats["syncs_tampered"] + stats["frames_tampered"] + stats["acks_forged"]


def measure_row(addrs, checkpoints, n, key, name, tamper, rate, index) -> dict:
    proxy_cli(addrs.control, "attack", "clear")
    if tamper:
        proxy_cli(addrs.control, "attack", "add", *tamper, *(["--rate", str(rate)] if rate is not None else []))
    before = proxy_cli(addrs.control, "stats", "--json")
    retry = ["--retry-timeout", "20"] if tamper else []   # where nothing gets through, give up sooner
    out = sender_run(addrs.proxy, checkpoints, n, key, f"row-{index}", *SOURCE_ATTACK, *retry)
    after = proxy_cli(addrs.control, "stats", "--json")
    row = {"row": name, "key": bool(key), "rate": rate if tamper else None, "accuracy": out.get("accuracy"),
           "ssim": out.get("ssim"), "frames_acked": out["frames_acked"], "refused": out.get("refused"),
           "tampered": tampered(after) - tampered(before), "error": out.get("error"),
           "t_d_told": out.get("t_d"), "t_p_used": out.get("t_p_used")}
    print(json.dumps(row), flush=True)
    return row


def measure_prefill(addrs, checkpoints, n, key, index) -> dict:
    proxy_cli(addrs.control, "attack", "clear")
    session = f"victim-{index}"
    junk = prefill(addrs.proxy, session, n)
    out = sender_run(addrs.proxy, checkpoints, n, key, session, *SOURCE_ATTACK)
    row = {"row": "prefill (junk frames under the victim's session)", "key": bool(key), **junk,
           "accuracy": out.get("accuracy"), "ssim": out.get("ssim"), "frames_acked": out["frames_acked"],
           "duplicate_acks": out.get("duplicate_acks")}
    print(json.dumps(row), flush=True)
    return row


def measure_hang_up(addrs, checkpoints, key) -> dict:
    proxy_cli(addrs.control, "attack", "clear")
    alone = sender_run(addrs.proxy, checkpoints, 50, key, "alone")["wall_time_s"]
    hang_up(addrs.proxy)
    start = time.perf_counter()
    after = sender_run(addrs.proxy, checkpoints, 50, key, "after-hang-up")["wall_time_s"]
    row = {"row": "hang-up (400 frames queued, client gone after 2 s)", "key": bool(key),
           "honest_50_alone_s": alone, "honest_50_after_s": after, "seconds_since": round(time.perf_counter() - start, 1)}
    print(json.dumps(row), flush=True)
    return row


def measure(n: int, checkpoints: str, key_file: str | None) -> list[dict]:
    """Every row, without (``key_file`` None) or with a key."""
    config = StackConfig(checkpoints=checkpoints, t_d=20, snr_db=15.0, log_level="warning", link_key_file=key_file)
    rows = []
    with LinkStack(config, sink=None) as stack:
        addrs = stack.addresses
        for i, (name, tamper, also_full) in enumerate(ROWS):
            rate = 0.5 if key_file and tamper else None
            rows.append(measure_row(addrs, checkpoints, n, key_file, name, tamper, rate, i))
            if key_file and also_full:
                rows.append(measure_row(addrs, checkpoints, n, key_file, name, tamper, None, 100 + i))
        rows.append(measure_prefill(addrs, checkpoints, n, key_file, len(rows)))
        if not key_file:   # the key changes nothing here: the cost bound is the epoch check, --max-t-p, the drop
            rows.append(measure_hang_up(addrs, checkpoints, key_file))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--checkpoints", default=str(REPO / "checkpoints" / "cifar10"))
    parser.add_argument("--out", default=str(REPO / "docs" / "security" / "measured.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "link.key"
        key.write_text(os.urandom(32).hex())
        rows = measure(args.n, args.checkpoints, None) + measure(args.n, args.checkpoints, str(key))
    Path(args.out).write_text(json.dumps({"n": args.n, "data": "CIFAR-10 (JPEG q75 copy), test split, seed 0",
                                          "link": "fixed t_D = 20, t_plus = 0, 15 dB AWGN, PGD 8/255 x 10 at the sender",
                                          "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
