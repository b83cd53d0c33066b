"""``diffusec-proxy``: the channel between sender and receiver, and its run-time control verbs.

    diffusec-proxy serve --listen ADDR --upstream ADDR --control ADDR [--preset P] [--checkpoints DIR]
    diffusec-proxy --control ADDR snr set DB | snr schedule FILE
    diffusec-proxy --control ADDR attack add KIND [params] | attack ls [--json] | attack rm NAME | attack clear
    diffusec-proxy --control ADDR stats [--json]
"""
from __future__ import annotations

import json
import logging
import math
import os
import signal
import sys
import threading
from pathlib import Path

import click

from link.metrics import check_option as check_metrics_option
from link.security_options import tls_files, tls_options
from shared.cli_options import checkpoints_option, fail, json_option, preset_option, seed_option, threads_option

from .impairments import Impairment, ImpairmentSpec, kind_class, kind_classes, shared_parameters
from .impairments import names as kind_names
from .impairments.base import kind_of_field
from .impairments.params import flag

DEFAULT_CONTROL = "127.0.0.1:50053"

MAIN_HELP = """DiffuSeC Link channel proxy: AWGN plus stackable impairments between sender and receiver.

    `serve` relays the Link service (Sync and Transmit) to the receiver and passes every latent and
    pilot symbol through the channel: AWGN at the set SNR (unit-power real symbols, dB), plus the
    impairments added at run time with `attack add` ({kinds}). The other verbs change
    or inspect a running proxy through its ChannelControl address (--control).
    """


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             help=MAIN_HELP.format(kinds=", ".join(kind_names())))
@click.option("--control", "control", default=lambda: os.environ.get("DIFFUSEC_PROXY_CONTROL", DEFAULT_CONTROL),
              show_default=f"$DIFFUSEC_PROXY_CONTROL or {DEFAULT_CONTROL}",
              help="host:port of the proxy's ChannelControl service (the verbs talk to it; serve listens on it).")
@tls_options("proxy")
@click.pass_context
def main(ctx: click.Context, control: str, tls_cert, tls_key, tls_ca, tls_server_name) -> None:
    ctx.obj = {"control": control, "tls": tls_files(tls_cert, tls_key, tls_ca, tls_server_name)}


# --- serve --------------------------------------------------------------------------------------
@main.command()
@click.option("--listen", default="127.0.0.1:50052", show_default=True, help="host:port where senders connect.")
@click.option("--upstream", default="127.0.0.1:50051", show_default=True, help="host:port of the receiver.")
@click.option("--control", "control", default=None,
              help="host:port for ChannelControl (default: the group's --control).")
@click.option("--snr-db", type=float, default=15.0, show_default=True, help="Initial AWGN SNR (dB).")
@seed_option(help="Seeds the channel noise, drops and jitter.")
@preset_option(help="Model preset of the link (the receiver's), for the `adversarial` surrogate.")
@checkpoints_option(help="Checkpoint folder of the `adversarial` surrogate's codec and classifier (default: "
                         "$DIFFUSEC_CHECKPOINTS/<preset> or checkpoints/<preset>, as the receiver). Loaded only "
                         "when an adversarial impairment is first added.")
@threads_option()
@click.option("--log-level", type=click.Choice(["debug", "info", "warning"]), default="info", show_default=True)
@click.option("--metrics", "metrics_address", default=None, callback=check_metrics_option,
              help="host:port to serve Prometheus metrics on (GET /metrics): frames in, forwarded, dropped, "
                   "jammed, attacked, Sync seconds, SNR and active impairments. Default: none.")
@click.pass_context
def serve(ctx, listen, upstream, control, snr_db, seed, preset, checkpoints, threads, log_level,
          metrics_address) -> None:
    """Relay Link from LISTEN to UPSTREAM through the channel; serve ChannelControl on CONTROL."""
    logging.basicConfig(level=log_level.upper(), format="proxy %(levelname)s %(message)s", stream=sys.stderr)
    import torch

    from link.metrics import MetricsAddressError, serve as serve_metrics

    from .metrics import ProxyCollector, sync_histogram
    from .service import build_servers
    from .state import ChannelState

    if threads:
        torch.set_num_threads(threads)
    control = control or ctx.obj["control"]
    sync_seconds = sync_histogram()
    try:
        state = ChannelState(snr_db, seed, upstream, preset, checkpoints)
        link, ctl, channel, _, _ = build_servers(state, listen, control, upstream, sync_seconds=sync_seconds,
                                                 tls=ctx.obj["tls"])
    except (ValueError, OSError, RuntimeError) as err:   # TlsError is a ValueError
        fail(str(err))
    if metrics_address:
        try:
            _, port = serve_metrics(metrics_address, ProxyCollector(state, sync_seconds))
        except MetricsAddressError as err:
            link.stop(grace=None)
            ctl.stop(grace=None)
            fail(str(err))
        logging.getLogger("diffusec.proxy").info("Prometheus metrics on %s (port %d)", metrics_address, port)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    log = logging.getLogger("diffusec.proxy")
    log.info("relaying Link %s -> %s at %.1f dB; ChannelControl on %s%s", listen, upstream, snr_db, control,
             " (TLS)" if ctx.obj["tls"].enabled else "")
    stop.wait()
    link.stop(grace=1.0).wait()
    ctl.stop(grace=0.5).wait()
    channel.close()
    log.info("stopped: %s", json.dumps(state.stats()))


# --- control client -----------------------------------------------------------------------------
def _call(ctx: click.Context, method: str, request, timeout_s: float = 10.0):
    """Call ChannelControl.``method`` on the --control address; a clear error when unreachable."""
    import grpc

    from protos.diffusec.link.v1 import link_pb2_grpc

    from protos.tls import open_channel

    address = ctx.obj["control"]
    try:
        channel = open_channel(address, ctx.obj["tls"], [])
    except ValueError as err:   # TlsError: an unreadable PEM file
        fail(str(err))
    with channel:
        try:
            return getattr(link_pb2_grpc.ChannelControlStub(channel), method)(request, timeout=timeout_s)
        except grpc.RpcError as err:
            if err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                fail(f"no channel proxy control service at {address} ({err.code().name}); is `diffusec-proxy serve` "
                     f"running? Point --control (or $DIFFUSEC_PROXY_CONTROL) at its control address.", 1)
            fail(f"{err.code().name}: {err.details()}")


def _stats_dict(reply) -> dict:
    """StatsReply -> {field: value} in the .proto's field order (ints stay ints; an unset optional or a
    non-finite float is None, so that ``--json`` prints valid JSON)."""
    values = {field.name: getattr(reply, field.name) if not _unset(reply, field) else None
              for field in reply.DESCRIPTOR.fields}
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in values.items()}


def _unset(message, field) -> bool:
    """An ``optional`` field (explicit presence) that was not set."""
    return bool(field.containing_oneof and field.containing_oneof.name.startswith("_")) \
        and not message.HasField(field.name)


def _print_stats(reply, as_json: bool) -> None:
    stats = _stats_dict(reply)
    if as_json:
        click.echo(json.dumps(stats))
        return
    for key, value in stats.items():
        shown = "-" if value is None else round(value, 3) if isinstance(value, float) else value
        click.echo(f"{key:18s} {shown}")


@main.group()
def snr() -> None:
    """Set the channel's AWGN SNR, or make it follow a schedule."""


# ignore_unknown_options: without it click reads a negative SNR (`snr set -3`) as an unknown option.
@snr.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("db", type=float)
@click.pass_context
def snr_set(ctx, db: float) -> None:
    """Set a constant SNR of DB dB (cancels any schedule)."""
    from protos.diffusec.link.v1 import link_pb2

    reply = _call(ctx, "SetSnr", link_pb2.SetSnrRequest(snr_db=db))
    click.echo(f"snr {reply.snr_db:g} dB")


@snr.command("schedule")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--period", "period_s", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Repeat the schedule every PERIOD seconds (0: the last SNR holds).")
@click.pass_context
def snr_schedule(ctx, file: Path, period_s: float) -> None:
    """Follow the SNR trace in FILE from now: CSV rows `seconds,snr_db` (header and # comments allowed).

    The SNR at time t is the value of the last row whose seconds <= t; before the first row's time,
    the first row's value.
    """
    from protos.diffusec.link.v1 import link_pb2

    from .snr import check_schedule, parse_schedule_csv

    try:
        points = check_schedule(parse_schedule_csv(file.read_text()), period_s)
    except ValueError as err:
        fail(f"{file}: {err}")
    reply = _call(ctx, "ScheduleSnr", link_pb2.ScheduleSnrRequest(
        points=[link_pb2.SnrPoint(at_s=t, snr_db=db) for t, db in points], period_s=period_s))
    click.echo(f"snr schedule of {len(points)} points, last at {points[-1][0]:g} s; now {reply.snr_db:g} dB")


@main.group(help=f"Stack, list and remove channel impairments ({', '.join(kind_names())}) on a running proxy.")
def attack() -> None:
    pass


SUMMARY_COLUMN = 29   # in `attack add --help`, where each kind's summary starts
HELP_LINE_CHARS = 90  # beyond this, a summary goes under its usage line


def _kinds_help() -> str:
    """Each kind's usage and summary, for `attack add --help`: `delay   --ms MS [--jitter-ms J]  forward ...`."""
    lines, indent = [], " " * SUMMARY_COLUMN
    for spec_class in kind_classes():
        usage = f"{spec_class.kind:7s} {' '.join(p.usage() for p in spec_class.parameters())}"
        first, *more = spec_class.summary.split("\n")
        if len(usage) < SUMMARY_COLUMN:
            lines.append(usage.ljust(SUMMARY_COLUMN) + first)
        elif len(usage) + 2 + len(first) <= HELP_LINE_CHARS:
            lines.append(f"{usage}  {first}")
        else:
            lines += [usage, indent + first]
        lines += [indent + line for line in more]
    return "Add an impairment of KIND on top of the others.\n\n\b\n" + "\n".join(lines)


def _parameter_options(command):
    """One --flag per parameter name over every kind (kinds that share a name share the flag), all unset
    by default so that a flag given to the wrong kind can be told apart from one not given."""
    for name, users in reversed(shared_parameters().items()):
        parameter = users[0][1]
        command = click.option(parameter.flag, name, type=parameter.click_type(), default=None,
                               help=_flag_help(users))(command)
    return command


def _flag_help(users: list) -> str:
    """`jamming, adversarial: what it is.`, one such part per distinct help text (and shown default)."""
    texts: dict[str, list[str]] = {}
    for kind, p in users:
        shown = p.shown_default()
        texts.setdefault(p.help + (f" [default: {shown}]" if shown is not None else ""), []).append(kind)
    return " ".join(f"{', '.join(kinds)}: {text}" for text, kinds in texts.items())


def _spec_from_flags(kind: str, values: dict) -> ImpairmentSpec:
    """The spec of ``kind`` from the parameter flags (None: not given); exits with an error on a flag of
    another kind or a missing required one. The values are checked by the proxy."""
    spec_class = kind_class(kind)
    parameters = spec_class.parameters()
    given = {k: v for k, v in values.items() if v is not None}
    wrong = [k for k in given if k not in {p.name for p in parameters}]
    if wrong:
        fail(f"{kind} takes {', '.join(p.flag for p in parameters)}, not {', '.join(flag(w) for w in wrong)}")
    missing = [p.flag for p in parameters if p.required and p.name not in given]
    if missing:
        fail(f"{kind} needs {', '.join(missing)}")
    return spec_class(**given)


@attack.command("add", help=_kinds_help())
@click.argument("kind", type=click.Choice(kind_names()))
@click.option("--name", default="", help="Name to refer to it by (default: KIND, or KIND-2, ...).")
@_parameter_options
@click.pass_context
def attack_add(ctx, kind, name, **values) -> None:
    from protos.diffusec.link.v1 import link_pb2

    spec = _spec_from_flags(kind, values)
    reply = _call(ctx, "AddImpairment", link_pb2.AddImpairmentRequest(impairment=Impairment(name, spec).to_message()),
                  timeout_s=spec.add_timeout_s)
    click.echo(f"added {_describe(reply)}")


def _impairment_dict(message) -> dict:
    field = message.WhichOneof("kind")
    params = getattr(message, field)
    return {"name": message.name, "kind": kind_of_field(field),
            **{f.name: None if _unset(params, f) else getattr(params, f.name) for f in params.DESCRIPTOR.fields}}


def _describe(message) -> str:
    item = _impairment_dict(message)
    shown = {k: v for k, v in item.items() if k not in ("name", "kind") and v not in (None, "")}
    params = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items())
    return f"{item['name']} ({item['kind']} {params})"


@attack.command("ls")
@json_option(help="Print a JSON list of {name, kind, params...}.")
@click.pass_context
def attack_ls(ctx, as_json: bool) -> None:
    """List the impairments, in the order they apply."""
    from protos.diffusec.link.v1 import link_pb2

    reply = _call(ctx, "ListImpairments", link_pb2.ListImpairmentsRequest())
    if as_json:
        click.echo(json.dumps([_impairment_dict(m) for m in reply.impairments]))
    elif not reply.impairments:
        click.echo("no impairments")
    for message in reply.impairments if not as_json else ():
        click.echo(_describe(message))


@attack.command("rm")
@click.argument("name")
@click.pass_context
def attack_rm(ctx, name: str) -> None:
    """Remove the impairment called NAME."""
    from protos.diffusec.link.v1 import link_pb2

    reply = _call(ctx, "RemoveImpairment", link_pb2.RemoveImpairmentRequest(name=name))
    click.echo(f"removed {_describe(reply.removed)}")


@attack.command("clear")
@click.pass_context
def attack_clear(ctx) -> None:
    """Remove every impairment (the SNR stays)."""
    from protos.diffusec.link.v1 import link_pb2

    reply = _call(ctx, "ClearImpairments", link_pb2.ClearImpairmentsRequest())
    click.echo(f"removed {reply.removed} impairment(s)")


def _fading_kinds() -> tuple[str, ...]:
    """The registered kinds that fade the channel (they override ImpairmentSpec.fading)."""
    return tuple(c.kind for c in kind_classes() if c.fades())


def _fading_point(at_s: float, kind: str, k_db: float | None, block: int | None):
    """A FadingPoint message: ``kind``'s Impairment from the flags (exits on a flag it does not take), none for awgn."""
    from protos.diffusec.link.v1 import link_pb2

    if kind == "awgn":
        if k_db is not None or block:
            fail("awgn takes neither a K factor nor a block")
        return link_pb2.FadingPoint(at_s=at_s)
    spec = _spec_from_flags(kind, {"k_db": k_db, "block": block})
    return link_pb2.FadingPoint(at_s=at_s, fading=Impairment(kind, spec).to_message())


@main.group()
def channel() -> None:
    """Choose the channel's fading model (AWGN alone, Rayleigh or Rician block fading), or a schedule of them."""


@channel.command("set")
@click.argument("kind", type=click.Choice(("awgn", *_fading_kinds())))
@click.option("--k-db", type=float, default=None, help="rician: K factor, dB (line-of-sight over scattered power).")
@click.option("--block", type=click.IntRange(min=0), default=None,
              help="Complex symbols per fading coefficient; 0 (the default): one per frame.")
@click.pass_context
def channel_set(ctx, kind: str, k_db: float | None, block: int | None) -> None:
    """Make the channel KIND from now on (cancels a fading schedule, replaces a fading impairment).

    The SNR and the other impairments stay. A coherent receiver (`diffusec-receiver --equaliser zf`)
    equalises the fading; the AWGN receiver does not.
    """
    from protos.diffusec.link.v1 import link_pb2

    reply = _call(ctx, "ScheduleFading", link_pb2.ScheduleFadingRequest(points=[_fading_point(0.0, kind, k_db, block)]))
    click.echo(f"channel {reply.channel}")


@channel.command("schedule")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--period", "period_s", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Repeat the schedule every PERIOD seconds (0: the last model holds).")
@click.pass_context
def channel_schedule(ctx, file: Path, period_s: float) -> None:
    """Follow the fading models in FILE from now: CSV rows `seconds,kind[,k_db[,block]]` (kind awgn, rayleigh
    or rician; header and # comments allowed), as `snr schedule` does for the SNR."""
    from protos.diffusec.link.v1 import link_pb2

    from .fading_schedule import parse_fading_csv

    try:
        points = parse_fading_csv(file.read_text(), period_s)
    except ValueError as err:
        fail(f"{file}: {err}")
    request = link_pb2.ScheduleFadingRequest(period_s=period_s, points=[
        _fading_point(p.at_s, p.kind, p.k_db, p.block or None) for p in points])
    reply = _call(ctx, "ScheduleFading", request)
    click.echo(f"channel schedule of {len(points)} points, last at {points[-1].at_s:g} s; now {reply.channel}")


@main.command()
@json_option(help="Print one JSON object.")
@click.pass_context
def stats(ctx, as_json: bool) -> None:
    """Frames in/forwarded/dropped/jammed/attacked, syncs, acks, SNRs, the adversarial PNR achieved."""
    from protos.diffusec.link.v1 import link_pb2

    _print_stats(_call(ctx, "Stats", link_pb2.StatsRequest()), as_json)


if __name__ == "__main__":
    main()
