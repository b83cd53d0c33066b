"""``diffusec up | demo | bench {sync,snr,link} | health``: run and measure the gRPC link locally.

The commands only parse options and print; the machinery lives beside them in this package
(``link.stack``, ``link.demo``, ``link.bench``). ``diffusec.cli`` registers them under ``diffusec``.
Addresses are ``host:port``, SNRs in dB, times in seconds unless a name says ``_ms``/``_us``.
"""
from __future__ import annotations

import contextlib
import json
import signal
import sys
import time

import click

from link.security_options import link_auth, link_key_option
from protos.limits import MAX_PILOT_SYMBOLS, MIN_PILOT_SYMBOLS
from shared.cli_options import (checkpoints_option, data_root_option, fail, fail_on, image_set_option, json_option,
                                note, preset_option, seed_option, set_threads, t_d_option, t_plus_option,
                                threads_option)

PRESET = preset_option("Model preset of the receiver (and of the sender in demo/bench).")
CHECKPOINTS = checkpoints_option()
JSON = json_option()
VERBOSE = click.option("--verbose", "-v", is_flag=True, help="Show the services' logs, prefixed [receiver]/[proxy].")
TLS_DIR = click.option("--tls-dir", type=click.Path(exists=True, file_okay=False), default=None,
                       help="A `diffusec certs` folder: mutual TLS on every hop (the services use server.pem, "
                            "clients client.pem; both trust ca.pem).")
DATA_ROOT = data_root_option("Folder holding the dataset.")


def _threads_option(default: int | None, what: str):
    return threads_option(f"torch threads of each service and of this process ({what}).", default)


class _Stop(BaseException):
    """Raised by the SIGINT/SIGTERM handler of ``up`` (BaseException: nothing swallows it)."""


def _sender_inputs(preset: str, checkpoints: str | None, parts: tuple[str, ...], data_root: str | None,
                   image_set: str, n: int, seed: int):
    """(the sender's pipeline with ``parts``, the ``n`` test images it sends); fails on what is missing."""
    from shared.checkpoints import CheckpointError
    from shared.data import DataNotFoundError, load_eval_data
    from shared.pipeline import Pipeline

    with fail_on(CheckpointError, DataNotFoundError, FileNotFoundError):
        return Pipeline.load(preset, checkpoints, parts), load_eval_data(preset, data_root, image_set, n, seed)


def _stack_config(preset, checkpoints, t_d=20, t_plus=0, snr_db=15.0, threads=None, seed=0, **more):
    from link.stack import StackConfig

    return StackConfig(preset=preset, checkpoints=checkpoints, t_d=t_d, t_plus=t_plus, snr_db=snr_db,
                       threads=threads, seed=seed, **more)


@contextlib.contextmanager
def _link(config, attach_link: str | None, attach_control: str | None, verbose: bool, need_control: bool = False):
    """Yield (proxy, control) addresses: the given ones, or those of a stack started here (stopped after)."""
    if attach_link or attach_control:
        if not attach_link or (need_control and not attach_control):
            fail("give both --link and --control to use a running link" if need_control
                 else "--control needs --link")
        yield attach_link, attach_control
        return
    from link.procs import stderr_sink
    from link.stack import LinkStack, StackError

    stack = LinkStack(config, sink=stderr_sink if verbose else None)
    note("starting receiver and proxy ...")
    try:
        addresses = stack.start()
    except StackError as err:
        fail(str(err), 1)
    try:
        yield addresses.proxy, addresses.control
    finally:
        stack.stop()


def _emit(payload: dict, as_json: bool, title: str) -> None:
    if as_json:
        click.echo(json.dumps(payload))
        return
    click.echo(title)
    for key, value in payload.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            click.echo(f"  {key}:")
            for row in value:
                click.echo("    " + "  ".join(f"{k}={v}" for k, v in row.items()))
        elif isinstance(value, dict):   # a nested group (breakdown, targets, machine): one line per field
            click.echo(f"  {key}:")
            for k, v in value.items():
                click.echo(f"    {k:24s} {v}")
        else:
            click.echo(f"  {key:26s} {value}")


# --- health -------------------------------------------------------------------------------------
@click.command()
@click.argument("address")
@click.option("--service", default="", help="Service name to check (default: the whole server), e.g. "
                                            "diffusec.link.v1.Link or diffusec.link.v1.ChannelControl.")
@click.option("--wait", "wait_s", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Keep polling up to this many seconds until SERVING.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Seconds per check.")
def health(address: str, service: str, wait_s: float, timeout_s: float) -> None:
    """Check the standard gRPC health service at ADDRESS (host:port); exit 0 when SERVING, else 1.

    Prints the status: SERVING, NOT_SERVING, UNAVAILABLE when nothing answers, NOT_FOUND for an
    unknown service. `python -m link.health ADDRESS` does the same without loading torch (the
    containers' health checks use it).
    """
    from link import health as h

    status = h.probe(address, service, wait_s, timeout_s)
    click.echo(f"{address}{'/' + service if service else ''}: {status}")
    sys.exit(0 if status == h.SERVING else 1)


POLICY = click.option("--policy", type=click.Choice(["fixed", "ddpg", "table"]), default="fixed", show_default=True,
                      help="The receiver's step policy at each Sync: fixed (--t-d/--t-plus), ddpg (the trained actor, "
                           "`diffusec train agent`), table (the measured grid's best state per SNR).")


def _policy_args(policy: str) -> tuple[str, ...]:
    return ("--policy", policy) if policy != "fixed" else ()


# --- up -----------------------------------------------------------------------------------------
@click.command()
@PRESET
@CHECKPOINTS
@t_d_option("Diffusing timesteps t_D the receiver's fixed policy hands out at each Sync.")
@t_plus_option("Extra denoising steps of the receiver (t_P = t_D + t_plus).")
@click.option("--snr-db", type=float, default=15.0, show_default=True, help="The proxy's initial AWGN SNR (dB).")
@_threads_option(None, "default: all cores")
@seed_option("Seeds the receiver's and the proxy's noise.")
@click.option("--receiver", "receiver_addr", default=None, help="host:port for the receiver (default: a free loopback port).")
@click.option("--proxy", "proxy_addr", default=None, help="host:port where senders connect (default: a free loopback port).")
@click.option("--control", "control_addr", default=None, help="host:port of the proxy's ChannelControl (default: free port).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning"]), default="info", show_default=True)
@POLICY
@click.option("--equaliser", type=click.Choice(["none", "zf", "mmse"]), default="none", show_default=True,
              help="The receiver's: none (the AWGN receiver) or a coherent one for `diffusec-proxy channel set "
                   "rayleigh|rician` (docs/fading.md).")
@link_key_option()
@TLS_DIR
@JSON
def up(preset, checkpoints, t_d, t_plus, snr_db, threads, seed, receiver_addr, proxy_addr, control_addr, log_level,
       policy, equaliser, link_key_file, tls_dir, as_json) -> None:
    """Run the receiver and the channel proxy locally until Ctrl-C or SIGTERM.

    Both start as child processes on loopback ports; once each answers its gRPC health check with
    SERVING, the addresses are printed (with --json: one JSON line on stdout with receiver, proxy,
    control and pids). The services' logs follow on stderr, prefixed [receiver] and [proxy]. Send
    images with `diffusec-sender run --to PROXY`; change the channel with `diffusec-proxy --control
    CONTROL snr set DB | attack add ...`. Ctrl-C or SIGTERM stops both (SIGTERM, then SIGKILL after
    10 s); if either exits on its own, the other is stopped and the exit status is 1.

    With --link-key-file the receiver signs and checks the link's messages; give senders the same
    key (`diffusec-sender run --link-key-file F`). The proxy never gets it. With --tls-dir every hop
    speaks mutual TLS; senders and the proxy CLI then need DIR's client.pem, client-key.pem, ca.pem.
    """
    from link.procs import stderr_sink
    from link.stack import LinkStack, StackError

    config = _stack_config(preset, checkpoints, t_d, t_plus, snr_db, threads, seed, receiver=receiver_addr,
                           proxy=proxy_addr, control=control_addr, log_level=log_level,
                           receiver_args=_policy_args(policy) + ("--equaliser", equaliser),
                           link_key_file=link_key_file, tls_dir=tls_dir)
    stack = LinkStack(config, sink=stderr_sink)

    def stop(signum, frame):
        raise _Stop(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        _announce(config, stack.start(), as_json)
        while True:
            death = stack.dead()
            if death:
                note(f"[up] {death}")
                code = 1
                break
            time.sleep(0.5)
    except _Stop:
        pass
    except StackError as err:
        note(f"error: {err}")
        code = 1
    finally:
        for sig in previous:  # a second Ctrl-C must not interrupt the shutdown
            signal.signal(sig, signal.SIG_IGN)
        codes = stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if codes:
            note("[up] stopped: " + ", ".join(f"{name} exit {status}" for name, status in codes.items()))
    sys.exit(code)


def _announce(config, addresses, as_json: bool) -> None:
    """Print where the link is up and how to use it (one JSON line with --json)."""
    info = {**addresses.to_dict(), "preset": config.preset, "t_d": config.t_d, "t_plus": config.t_plus,
            "snr_db": config.snr_db, "link_key": bool(config.link_key_file), "tls": bool(config.tls_dir)}
    if as_json:
        click.echo(json.dumps(info))
        sys.stdout.flush()
        return
    tls = config.client_tls()
    client_args = "".join(f" --{flag} {path}" for flag, path in (("tls-cert", tls.cert), ("tls-key", tls.key),
                                                                  ("tls-ca", tls.ca)) if path)
    key_args = f" --link-key-file {config.link_key_file}" if config.link_key_file else ""
    click.echo(f"link up: preset {config.preset}, fixed t_D = {config.t_d}, t_plus = {config.t_plus}, "
               f"{config.snr_db:g} dB{', link key' if key_args else ''}{', mutual TLS' if client_args else ''}\n"
               f"  receiver  {addresses.receiver}  (pid {addresses.pids['receiver']})\n"
               f"  proxy     {addresses.proxy}  (pid {addresses.pids['proxy']})  "
               f"send: diffusec-sender run --to {addresses.proxy} --n 100{key_args}{client_args}\n"
               f"  control   {addresses.control}  "
               f"e.g. diffusec-proxy{client_args} --control {addresses.control} attack add jamming --pnr-db 6\n"
               f"Ctrl-C stops both.")
    sys.stdout.flush()


# --- demo ---------------------------------------------------------------------------------------
@click.command()
@PRESET
@click.option("--n", "n", type=click.IntRange(min=1), default=200, show_default=True,
              help="Test images sent in each scenario (the same images every time).")
@CHECKPOINTS
@threads_option("torch threads of the receiver and the proxy (default: all cores; --adaptation: 1, so that the "
                "sync timing does not depend on other jobs fighting for the cores); the sender, in this "
                "process, encodes on one.")
@t_d_option("Fixed t_D of the receiver (ddpg: a session's initial state).")
@t_plus_option("Extra denoising steps (t_P = t_D + t_plus).")
@click.option("--scenario", "scenario_names", multiple=True,
              help="Run only these scenarios (repeatable): clean, awgn-low, jamming, drop.")
@image_set_option("test: the preset's test split; sample: the embedded sample; auto: test split if found, else sample.")
@DATA_ROOT
@seed_option("Seeds the image choice and all noise.")
@click.option("--window", type=click.IntRange(min=1), default=None,
              help="Sender: frames in flight. [default: 64; --adaptation: 16]")
@click.option("--batch", type=click.IntRange(min=1), default=None,
              help="Sender: images encoded together. [default: 32; --adaptation: 8]")
@click.option("--sync-every", type=click.IntRange(min=0), default=None,
              help="Sender: re-sync every K frames. [default: 25; --adaptation: 8]")
@click.option("--ack-timeout", type=click.FloatRange(min=0.01), default=2.0, show_default=True,
              help="Sender: least seconds before an unacknowledged frame is resent.")
@click.option("--adaptation", is_flag=True,
              help="Instead of the scenarios: the live adaptation run (proxy SNR schedule 15 -> -3 -> 9 dB, one "
                   "session, the receiver's choice per Sync), written to OUT/adaptation-live.{json,png}.")
@click.option("--policy", type=click.Choice(["fixed", "ddpg", "table"]), default=None,
              help="The receiver's step policy (see `diffusec up --policy`). [default: fixed; --adaptation: ddpg]")
@click.option("--phase-s", type=click.FloatRange(min=0.1), default=20.0, show_default=True,
              help="--adaptation: seconds each SNR of the schedule holds.")
@click.option("--episode-steps", type=click.IntRange(min=0), default=None,
              help="--adaptation, ddpg: the receiver's actor decisions per channel state before the choice holds "
                   "(`diffusec-receiver serve --episode-steps`; 0 = a decision at every Sync). [default: 3]")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="--adaptation: folder for adaptation-live.json and adaptation-live.png (the repo's are in "
                   "docs/, made with --out docs).")
@VERBOSE
@JSON
def demo(preset, n, checkpoints, threads, t_d, t_plus, scenario_names, image_set, data_root, seed, window, batch,
         sync_every, ack_timeout, adaptation, policy, phase_s, episode_steps, out_dir, verbose, as_json) -> None:
    """Bring the link up, send N test images under each scenario, print a table, shut down.

    \b
    clean     AWGN 15 dB
    awgn-low  AWGN -3 dB
    jamming   AWGN 15 dB + Gaussian jamming at PNR 10 dB (SINR 4.6 dB)
    drop      AWGN 15 dB + 20% of frames lost (the sender resends them)

    Per scenario: accuracy (top-1) and SSIM (original vs purified image) in 0..1, frames acked,
    sent and resent, frames the proxy dropped, the SINR the receiver measured on the pilots; then
    the sync latency (one Sync round trip through the proxy, ms). Runs offline: without a data
    root it uses the embedded 500-image test sample.

    With --adaptation: the proxy follows an SNR schedule (15 dB from 0 s, -3 dB from T, 9 dB from
    2T; T = --phase-s) while one session sends the N images over and over, syncing every
    --sync-every frames; the receiver (policy --policy, default ddpg; purifying with --sampler
    ddim --steps 5 for speed: this run is about the sync decisions, not image quality) chooses
    (t_D, t_plus) at each Sync. Prints every sync (time s, scheduled and measured SNR dB, t_D,
    t_plus) and, per phase, after how many syncs the choice settled; writes
    OUT/adaptation-live.json and .png. -v shows the receiver's own per-sync log lines.
    """
    if adaptation:
        _demo_adaptation(preset, n, checkpoints, threads, t_d, t_plus, image_set, data_root, seed, window, batch,
                         sync_every, ack_timeout, policy or "ddpg", phase_s, out_dir, verbose, as_json, episode_steps)
        return
    if episode_steps is not None:
        fail("--episode-steps applies to --adaptation (the scenarios use the fixed policy unless --policy)")
    from link import demo as d

    policy = policy or "fixed"
    set_threads(1)  # this process only encodes (the sender); the receiver needs the cores
    scenarios = _scenarios(d.default_scenarios(), scenario_names)
    pipeline, data = _sender_inputs(preset, checkpoints, ("codec",), data_root, image_set, n, seed)
    started = time.perf_counter()
    options = d.DemoOptions(preset=preset, sync_every=25 if sync_every is None else sync_every, window=window or 64,
                            batch=batch or 32, ack_timeout_s=ack_timeout, seed=seed)
    config = _stack_config(preset, checkpoints, t_d, t_plus, 15.0, threads, seed, receiver_args=_policy_args(policy))
    with _link(config, None, None, verbose) as (proxy, control):
        note(f"link up; sending {len(data)} images of {data.description} per scenario")
        try:
            result = d.run(pipeline, proxy, control, data.images, data.labels, scenarios, options, progress=note)
        except Exception as err:  # noqa: BLE001 - a link failure: report it, then the stack stops
            fail(f"the demo failed: {err}", 1)
    payload = {"preset": preset, "n": len(data), "data": data.description, "t_d": t_d, "t_plus": t_plus, "policy": policy,
               **d.to_dict(result), "total_wall_time_s": round(time.perf_counter() - started, 2)}
    if as_json:
        click.echo(json.dumps(payload))
        return
    click.echo(f"DiffuSeC link demo: {len(data)} images of {data.description} per scenario, preset {preset}, "
               f"t_D = {t_d}, t_plus = {t_plus}")
    click.echo(d.table(result.rows))
    click.echo(f"sync latency p50 {payload['sync_p50_ms']} ms, p99 {payload['sync_p99_ms']} ms over "
               f"{payload['sync_count']} syncs; total {payload['total_wall_time_s']} s")


def _scenarios(scenarios: list, names: tuple[str, ...]) -> list:
    """The demo's ``scenarios`` named by --scenario, in that order (all of them without); fails on an unknown name."""
    if not names:
        return scenarios
    known = {s.name: s for s in scenarios}
    unknown = [name for name in names if name not in known]
    if unknown:
        fail(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(known)}")
    return [known[name] for name in names]


ADAPTATION_SAMPLER = ("--sampler", "ddim", "--steps", "5")
ADAPTATION_NOTE = "ddim 5 steps for speed: the live demo is about the sync decisions, not image quality"


def _output_folder(out_dir: str):
    """``out_dir`` as a Path, created if needed; fails saying why it cannot be."""
    from pathlib import Path

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        fail(f"cannot create {out}: {err}")
    return out


def _demo_adaptation(preset, n, checkpoints, threads, t_d, t_plus, image_set, data_root, seed, window, batch,
                     sync_every, ack_timeout, policy, phase_s, out_dir, verbose, as_json, episode_steps=None) -> None:
    """`diffusec demo --adaptation`: see :mod:`link.live_step_choice`."""
    from link import live_step_choice as a
    from receiver.policy import EPISODE_STEPS

    if sync_every == 0:
        fail("--adaptation needs --sync-every >= 1: the policy decides at each Sync")
    set_threads(1)  # this process only encodes (the sender); the receiver needs the cores
    # One thread per service: with all cores, a receiver sharing them with another job ran at
    # 3 images/s instead of 17 (oversubscribed), and the run lasted 3 minutes instead of one.
    threads = threads or 1
    options = a.AdaptationOptions(preset=preset, phase_s=phase_s, sync_every=sync_every or 8, window=window or 16,
                                  batch=batch or 8, ack_timeout_s=ack_timeout, seed=seed)
    out = _output_folder(out_dir)
    pipeline, data = _sender_inputs(preset, checkpoints, ("codec",), data_root, image_set, n, seed)
    started = time.perf_counter()
    episode_steps = EPISODE_STEPS if episode_steps is None else episode_steps
    receiver_args = _policy_args(policy) + ADAPTATION_SAMPLER + ("--episode-steps", str(episode_steps))
    config = _stack_config(preset, checkpoints, t_d, t_plus, options.phases_db[0], threads, seed,
                           receiver_args=receiver_args)
    with _link(config, None, None, verbose) as (proxy, control):
        note(f"link up: receiver policy {policy}, purifying with ddim 5 steps (this run is about the sync "
             f"decisions, not image quality); SNR schedule "
             + " -> ".join(f"{db:g} dB" for db in options.phases_db) + f", {phase_s:g} s each")
        try:
            report = a.run(pipeline, proxy, control, data.images, data.labels, options, progress=note)
        except Exception as err:  # noqa: BLE001 - a link failure: report it, then the stack stops
            fail(f"the adaptation run failed: {err}", 1)
    report = _adaptation_report(report, policy, preset, data.description, len(data), t_d, t_plus, threads,
                                episode_steps, time.perf_counter() - started)
    json_path, png_path = out / "adaptation-live.json", out / "adaptation-live.png"
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    a.plot(report, png_path)
    if as_json:
        click.echo(json.dumps(report))
        return
    _print_adaptation(report, options.sync_every, preset, json_path, png_path)


def _adaptation_report(run: dict, policy: str, preset: str, data: str, images: int, t_d: int, t_plus: int,
                       threads: int, episode_steps: int, wall_s: float) -> dict:
    """adaptation-live.json: the run (:func:`link.live_step_choice.run`) with what it ran on and the receiver's settings."""
    from receiver.policy import EPISODE_CHANGE_DB

    ddpg = policy == "ddpg"
    receiver = {"sampler": "ddim", "steps": 5, "initial_t_d": t_d, "initial_t_plus": t_plus, "threads": threads,
                "episode_steps": episode_steps if ddpg else None, "episode_change_db": EPISODE_CHANGE_DB if ddpg else None,
                "note": ADAPTATION_NOTE}
    return {"policy": policy, "preset": preset, "data": data, "images_given": images, "receiver": receiver,
            **run, "total_wall_time_s": round(wall_s, 2)}


def _print_adaptation(report: dict, sync_every: int, preset: str, json_path, png_path) -> None:
    from link import live_step_choice as a

    click.echo(f"DiffuSeC live adaptation: policy {report['policy']}, preset {preset}, {report['data']}; a Sync every "
               f"{sync_every} frames; receiver ddim 5 steps")
    click.echo(a.table(report))
    for line in a.settle_lines(report):
        click.echo(line)
    verdict = "yes" if report["all_settled_within"] else "no"
    click.echo(f"settled within {a.SETTLE_WITHIN} syncs of every change: {verdict}; {report['sync_count']} syncs, "
               f"{report['frames_acked']}/{report['images_sent']} frames acked, total {report['total_wall_time_s']} s")
    click.echo(f"wrote {json_path} and {png_path}")


# --- bench --------------------------------------------------------------------------------------
@click.group()
def bench() -> None:
    """Benchmarks of the link on loopback: sync latency, SNR estimate, throughput.

    Each starts its own receiver and proxy (like `diffusec up`) unless --link/--control point at
    running ones. The machines are shared and noisy: judge by the ratios, report the absolute times.
    """


ATTACH_LINK = click.option("--link", "attach_link", default=None,
                           help="Use the Link service (a channel proxy) at host:port instead of starting one.")
ATTACH_CONTROL = click.option("--control", "attach_control", default=None,
                              help="With --link: that proxy's ChannelControl host:port.")


@bench.command("sync")
@click.option("--n", "n", type=click.IntRange(min=1), default=2000, show_default=True, help="Round trips of each kind.")
@click.option("--warmup", type=click.IntRange(min=0), default=50, show_default=True, help="Untimed round trips first.")
@click.option("--pilot-length", type=click.IntRange(MIN_PILOT_SYMBOLS, MAX_PILOT_SYMBOLS), default=1024, show_default=True,
              help="Pilot symbols per Sync (the sender's default).")
@PRESET
@CHECKPOINTS
@_threads_option(1, "the sync path is single-threaded work")
@POLICY
@ATTACH_LINK
@link_key_option()
@TLS_DIR
@VERBOSE
@JSON
def bench_sync(n, warmup, pilot_length, preset, checkpoints, threads, policy, attach_link, link_key_file, tls_dir,
               verbose, as_json) -> None:
    """Sync round trips sender -> proxy -> receiver vs a bare gRPC echo through a relay (same shape).

    Interleaved in one run. Prints sync_p50_ms, sync_p99_ms, echo_p50_ms, echo_p99_ms, ratio
    (sync p50 / echo p50; target <= 1.25), p99_ratio (target <= 1.5) and a breakdown in
    microseconds measured inside the servers (SyncReply.timing): the receiver's handler, its SNR
    estimate and policy, the proxy's own work, and the extra p50 over the echo.

    With --link-key-file the syncs are signed and their replies checked inside the timed interval; with
    --tls-dir every hop of the sync path speaks mutual TLS. The echo stays plaintext and unsigned:
    the ratio then includes what the protection costs.
    """
    from link.bench import sync
    from link.procs import stderr_sink

    set_threads(threads)
    auth = link_auth(link_key_file)
    config = _stack_config(preset, checkpoints, threads=threads, receiver_args=_policy_args(policy),
                           link_key_file=link_key_file, tls_dir=tls_dir)
    with _link(config, attach_link, None, verbose) as (proxy, _):
        note(f"timing {n} syncs and {n} echoes, interleaved ...")
        report = sync.run(proxy, n, pilot_length, warmup, preset, sink=stderr_sink if verbose else None,
                          auth=auth, tls=config.client_tls())
    report["link_key"], report["tls"] = auth is not None, "mutual" if tls_dir else "off"
    report["policy"] = policy if not attach_link else None  # attached: whatever the running receiver uses
    _emit(report, as_json, "bench sync (milliseconds; breakdown in microseconds)")


def _fading_impairment(channel: str, k_db: float | None, block: int):
    """The Impairment message of ``channel`` (None for awgn), its spec checked by the proxy's registry; exits on
    an option the channel does not take."""
    from channel_proxy.impairments import Impairment, kind_class

    if (k_db is not None) != (channel == "rician"):
        fail("--k-db goes with --channel rician, and rician needs it")
    if channel == "awgn":
        if block:
            fail("--block goes with a fading --channel")
        return None
    spec = kind_class(channel)(block=block) if channel == "rayleigh" else kind_class(channel)(k_db=k_db, block=block)
    with fail_on(ValueError):
        spec.check()
    return Impairment(channel, spec).to_message()


@bench.command("snr")
@click.option("--low", "low_db", type=float, default=-6.0, show_default=True, help="Lowest SNR of the sweep (dB).")
@click.option("--high", "high_db", type=float, default=18.0, show_default=True, help="Highest SNR (dB).")
@click.option("--step", "step_db", type=click.FloatRange(min=0.01), default=1.0, show_default=True, help="Sweep step (dB).")
@click.option("--repeats", type=click.IntRange(min=1), default=20, show_default=True, help="Syncs per SNR.")
@click.option("--pilot-length", type=click.IntRange(MIN_PILOT_SYMBOLS, MAX_PILOT_SYMBOLS), default=1024, show_default=True,
              help="Pilot symbols per Sync.")
@PRESET
@CHECKPOINTS
@_threads_option(1, "the sync path is single-threaded work")
@click.option("--channel", type=click.Choice(["awgn", "rayleigh", "rician"]), default="awgn", show_default=True,
              help="Fading added at the proxy for the sweep; fading needs a coherent receiver (started here with "
                   "--equaliser zf).")
@click.option("--k-db", type=float, default=None, help="rician: K factor (dB).")
@click.option("--block", type=click.IntRange(min=0), default=0, show_default=True,
              help="Fading: complex symbols per coefficient (0: one per Sync pilot).")
@ATTACH_LINK
@ATTACH_CONTROL
@VERBOSE
@JSON
def bench_snr(low_db, high_db, step_db, repeats, pilot_length, preset, checkpoints, threads, channel, k_db, block,
              attach_link, attach_control, verbose, as_json) -> None:
    """The receiver's pilot SNR estimate through the proxy, against the proxy's set SNR.

    Sweeps LOW..HIGH dB; prints mean_abs_error_db (target <= 0.5 on AWGN, <= 1 under fading),
    max_abs_error_db, the bias and a per-SNR table. With --link/--control the proxy must have no
    impairments; its SNR is restored (and the fading removed).
    """
    from link.bench import snr

    if high_db < low_db:
        fail(f"--high ({high_db}) is below --low ({low_db})")
    fading = _fading_impairment(channel, k_db, block)
    set_threads(threads)
    config = _stack_config(preset, checkpoints, threads=threads,
                           receiver_args=() if fading is None else ("--equaliser", "zf"))
    with _link(config, attach_link, attach_control, verbose, need_control=True) as (proxy, control):
        try:
            report = snr.run(proxy, control, snr.sweep(low_db, high_db, step_db), repeats, pilot_length, preset,
                             fading=fading)
        except snr.BenchError as err:
            fail(str(err), 1)
    _emit(report, as_json, "bench snr (dB)")


@bench.command("link")
@click.option("--n", "n", type=click.IntRange(min=1), default=512, show_default=True, help="Test images timed.")
@t_d_option("Fixed t_D of the receiver started here (t_P = t_D + t_plus).", default=40)
@t_plus_option("Extra denoising steps.")
@click.option("--snr-db", type=float, default=15.0, show_default=True, help="Channel SNR (dB), both paths.")
@click.option("--window", type=click.IntRange(min=1), default=None, help="Sender: frames in flight (default: the sender's).")
@click.option("--batch", type=click.IntRange(min=1), default=None, help="Sender: images encoded together (default: the sender's).")
@click.option("--max-batch", type=click.IntRange(min=1), default=None,
              help="Receiver: most frames per micro-batch (default: the receiver's).")
@click.option("--batch-wait-ms", type=click.FloatRange(min=0), default=None,
              help="Receiver: how long a micro-batch waits for more frames (default: the receiver's).")
@click.option("--eval-batch", type=click.IntRange(min=1), default=250, show_default=True,
              help="In-process batch (as `diffusec eval --batch`).")
@click.option("--warmup", type=click.IntRange(min=1), default=32, show_default=True, help="Untimed images first, both paths.")
@click.option("--rounds", type=click.IntRange(min=1), default=2, show_default=True,
              help="Split the images into this many parts; the two paths alternate over them in ABBA order.")
@image_set_option()
@DATA_ROOT
@seed_option()
@PRESET
@CHECKPOINTS
@_threads_option(None, "default: all cores; the receiver and the in-process run get the same, the sender one")
@ATTACH_LINK
@click.option("--compose-link", "compose_link", default=None, metavar="ADDR",
              help="Also time a link running in containers (its proxy, e.g. 127.0.0.1:50052 after `docker compose "
                   "up -d`) in the same rotation: compose_images_per_s and compose_ratio (containers / native "
                   "link; target >= 0.8). Its receiver must use the same --t-d/--t-plus.")
@VERBOSE
@JSON
def bench_link(n, t_d, t_plus, snr_db, window, batch, max_batch, batch_wait_ms, eval_batch, warmup, rounds, image_set,
               data_root, seed, preset, checkpoints, threads, attach_link, compose_link, verbose, as_json) -> None:
    """Images per second over sender -> proxy -> receiver vs the same chain in one process.

    Prints network_images_per_s, inprocess_images_per_s and ratio (network / in-process; target
    >= 0.85) at t_P = t_D + t_plus (default 40), plus both accuracies as a check that the network
    did not change the math. The two paths alternate over parts of the images (--rounds, ABBA), so
    other jobs on the machine slow both alike. With --link, the receiver's policy decides the timesteps and the
    proxy's SNR should equal --snr-db.
    """
    from link.bench import throughput
    from sender.link import SenderOptions

    set_threads(threads)
    if compose_link:
        from link import health as link_health

        status = link_health.check(compose_link)
        if status != link_health.SERVING:
            fail(f"--compose-link {compose_link}: no link answers there ({status}); bring it up with "
                 f"`docker compose up -d` (its proxy listens on 127.0.0.1:50052)")
    defaults = SenderOptions()
    window, batch = window or defaults.window, batch or defaults.batch
    pipeline, data = _sender_inputs(preset, checkpoints, ("codec", "denoiser", "classifier"), data_root, image_set, n,
                                    seed)   # all three: the in-process path runs the whole chain
    receiver_args = []
    if max_batch:
        receiver_args += ["--max-batch", str(max_batch)]
    if batch_wait_ms is not None:
        receiver_args += ["--batch-wait-ms", str(batch_wait_ms)]
    config = _stack_config(preset, checkpoints, t_d, t_plus, snr_db, threads, seed, receiver_args=tuple(receiver_args))
    with _link(config, attach_link, None, verbose) as (proxy, _):
        try:
            report = throughput.run(pipeline, proxy, data, snr_db, window, batch, eval_batch, seed, warmup,
                                    progress=note, inprocess_threads=threads, rounds=rounds, compose=compose_link)
        except throughput.TimestepMismatch as err:
            fail(str(err))
    _emit(report, as_json, "bench link (images per second)")


COMMANDS = (up, demo, bench, health)


def register(group: click.Group) -> None:
    """Add the link commands to the ``diffusec`` group."""
    for command in COMMANDS:
        group.add_command(command)
