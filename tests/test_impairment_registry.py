"""The impairment registry, checked for every registered kind: it is listed, its parameters are
validated (bad values refused with a clear error, good ones kept), it survives the proto round trip,
and the proxy CLI's `attack add` turns its flags into the spec that `attack ls` shows back (over
the real ChannelControl service, in process). A new kind's module is covered without editing this file.
"""
from __future__ import annotations

import ast
import dataclasses
import json
import math
import os
import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from channel_proxy import impairments
from channel_proxy.cli import _flag_help
from channel_proxy.cli import main as proxy_cli
from channel_proxy.impairments import Impairment, ImpairmentSpec, kind_class, kind_classes, names, register
from channel_proxy.impairments import kinds as kinds_package
from channel_proxy.impairments import registry
from channel_proxy.impairments.base import message_class
from channel_proxy.impairments.params import param
from channel_proxy.service import build_servers
from channel_proxy.state import ChannelState
from link_support import REPO_ROOT, free_port
from protos.diffusec.link.v1 import link_pb2

KINDS = names()
# the kinds' names are the oneof's field names with '-' for '_' ("sync_tamper" -> "sync-tamper")
ONEOF = [f.name.replace("_", "-") for f in link_pb2.Impairment.DESCRIPTOR.oneofs_by_name["kind"].fields]
PROXY_CORE = ("state.py", "service.py", "cli.py", "outbound.py", "metrics.py")


def sample(spec_class: type[ImpairmentSpec], end: str, text: dict[str, str] | None = None) -> ImpairmentSpec:
    """A valid spec with every parameter at the ``low`` or ``high`` end of what it allows (the last
    choice, the upper bound, ...), unbounded numbers at 1.5 (ints 1 above their lower bound); texts
    from ``text`` by name, else "sample"."""
    values = {}
    for p in spec_class.parameters():
        if p.choices:
            values[p.name] = p.choices[-1 if end == "high" else 0]
        elif p.type is str:
            values[p.name] = (text or {}).get(p.name, "sample")
        elif getattr(p, end) is not None:
            values[p.name] = p.type(getattr(p, end))
        else:
            values[p.name] = p.type((p.low or 0) + 1) if p.type is int else 1.5
    return spec_class(**values)


def bounded(kind: str) -> list[tuple[str, str, float]]:
    """(parameter, end, a value just beyond that end) for each bound of ``kind``'s numbers."""
    out = []
    for p in kind_class(kind).parameters():
        if p.low is not None:
            out.append((p.name, "low", p.low - 1))
        if p.high is not None:
            out.append((p.name, "high", p.high + 1))
    return out


# --- the registry ------------------------------------------------------------------------------------
def test_every_oneof_entry_has_a_registered_kind_and_back():
    assert KINDS == tuple(ONEOF)
    assert set(KINDS) >= {"jamming", "drop", "delay", "adversarial"}
    for kind in KINDS:
        assert kind_class(kind).kind == kind and kind_class(kind) in kind_classes()


def test_every_module_in_kinds_registers_its_kind():
    modules = {m.name for m in pkgutil.iter_modules(kinds_package.__path__)}
    assert modules == {c.__module__.rsplit(".", 1)[1] for c in kind_classes()}


def test_unknown_kinds_are_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="no impairment kind 'erasure'; it knows jamming, drop"):
        kind_class("erasure")
    with pytest.raises(ValueError, match="has no kind; set one of: " + ", ".join(KINDS)):
        Impairment.from_message(link_pb2.Impairment(name="x"))


@pytest.fixture
def restore_registry():
    saved = dict(registry._KINDS)
    yield
    registry._KINDS.clear()
    registry._KINDS.update(saved)


def _kind(kind: str, frozen: bool = True, **fields):
    """A throwaway kind class with ``fields`` {name: (annotation, field)}."""
    namespace = {"__annotations__": {k: a for k, (a, _) in fields.items()}, "kind": kind,
                 **{k: f for k, (_, f) in fields.items()}}
    return dataclasses.dataclass(frozen=frozen)(type(f"Bad{kind.title()}", (ImpairmentSpec,), namespace))


def rate():
    return param("p", low=0.0, high=1.0)


@pytest.mark.parametrize("bad, match", [
    (lambda: _kind("drop", frozen=False, rate=(float, rate())), "frozen"),
    (lambda: _kind("erasure", rate=(float, rate())), "no entry of the Impairment oneof"),
    (lambda: _kind("drop", probability=(float, param("p"))), r"must be the fields of its proto message"),
    (lambda: _kind("delay", jitter_ms=(float, param("j", default=0.0)), ms=(float, param("m", default=0.0))),
     "in order"),
    (lambda: _kind("drop", rate=(str, param("p"))), "rate is str but its proto field is float"),
    (lambda: _kind("drop", rate=("float | None", param("p", default=None))), "is optional float"),
    (lambda: _kind("drop", rate=(float, dataclasses.field(default=0.0))), r"must be declared with param"),
    (lambda: _kind("jamming", pnr_db=(float, param("p", low=-10.0, high=10.0))), "share the --pnr-db flag"),
    (lambda: _kind("drop", rate=(float, rate())), "registered already"),
])
def test_register_refuses_a_kind_that_does_not_fit_link_proto(restore_registry, bad, match):
    before = KINDS
    with pytest.raises(TypeError, match=match):
        register(bad())
    assert names() == before


# --- validation ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_good_values_are_kept(kind):
    for end in ("low", "high"):
        spec = sample(kind_class(kind), end)
        assert spec.check() is spec
    assert sample(kind_class(kind), "low") != sample(kind_class(kind), "high")


@pytest.mark.parametrize("kind", KINDS)
def test_values_beyond_a_bound_are_refused_with_the_range(kind):
    for name, end, value in bounded(kind):
        p = next(p for p in kind_class(kind).parameters() if p.name == name)
        spec = dataclasses.replace(sample(kind_class(kind), end), **{name: p.type(value)})
        with pytest.raises(ValueError, match=re.escape(f"{kind} {name} must {p.allowed()}, got {p.type(value)}")):
            spec.check()


@pytest.mark.parametrize("kind", KINDS)
def test_non_finite_wrong_typed_and_missing_values_are_refused(kind):
    good = sample(kind_class(kind), "low")
    for p in kind_class(kind).parameters():
        bad = [(math.nan, "finite"), (math.inf, "finite"), (-math.inf, "finite")] if p.type is float else \
              [(1.5, "whole number"), (True, "whole number")] if p.type is int else [(3, "must be text")]
        bad += [(None, "must be given")] if not p.optional else []
        bad += [("word", "must be one of " + ", ".join(p.choices))] if p.choices else []
        for value, words in bad:
            with pytest.raises(ValueError, match=f"{kind} {p.name} .*{words}"):
                dataclasses.replace(good, **{p.name: value}).check()
        if p.optional:
            assert dataclasses.replace(good, **{p.name: None}).check()


@pytest.mark.parametrize("spec, words", [
    ("jamming pnr_db 60.5", "jamming pnr_db must lie in -60..60 dB, got 60.5"),
    ("drop rate -0.1", "drop rate must lie in 0..1, got -0.1"),
    ("delay ms 60001", "delay ms must lie in 0..60000 ms, got 60001"),
    ("delay jitter_ms -1", "delay jitter_ms must lie in 0..60000 ms, got -1"),
    ("adversarial steps 1001", "adversarial steps must lie in 1..1000, got 1001"),
    ("adversarial target -1", "adversarial target must be >= 0, got -1"),
    ("adversarial method bim", "adversarial method must be one of fgm, pgd, got 'bim'"),
])
def test_the_shipped_kinds_allow_what_the_docs_say(spec, words):
    kind, name, text = spec.split()
    p = next(p for p in kind_class(kind).parameters() if p.name == name)
    value = text if p.type is str else p.type(text)
    with pytest.raises(ValueError, match=re.escape(words)):
        dataclasses.replace(sample(kind_class(kind), "low"), **{name: value}).check()


# --- proto ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_proto_round_trip(kind):
    spec_class = kind_class(kind)
    for end in ("low", "high"):
        spec = sample(spec_class, end)
        message = spec.to_message()
        assert isinstance(message, message_class(kind)) and spec_class.from_message(message) == spec
        item = Impairment(f"{kind}-{end}", spec)
        assert Impairment.from_message(item.to_message()) == item
        assert item.to_message().WhichOneof("kind") == kind.replace("-", "_")


@pytest.mark.parametrize("kind", KINDS)
def test_an_empty_message_means_the_defaults(kind):
    """proto3 sends no zero values: an older client's unset field is the parameter's default."""
    spec = kind_class(kind).from_message(message_class(kind)())
    for p in kind_class(kind).parameters():
        assert getattr(spec, p.name) == (p.type() if p.required else p.default)


# --- CLI over the real ChannelControl service ----------------------------------------------------------
@pytest.fixture(scope="module")
def proxy(untrained_checkpoints):
    state = ChannelState(snr_db=10.0, checkpoints=str(untrained_checkpoints))
    control = f"127.0.0.1:{free_port()}"
    link, ctl, channel, _, _ = build_servers(state, f"127.0.0.1:{free_port()}", control, f"127.0.0.1:{free_port()}")
    runner = CliRunner()
    yield state, lambda *args: runner.invoke(proxy_cli, ["--control", control, *args])
    link.stop(0)
    ctl.stop(0)
    channel.close()


def flags_of(spec: ImpairmentSpec) -> list[str]:
    return [a for p in spec.parameters() if getattr(spec, p.name) is not None
            for a in (p.flag, str(getattr(spec, p.name)))]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("end", ["low", "high"])
def test_cli_add_parses_into_the_spec_and_ls_shows_it_back(proxy, untrained_checkpoints, kind, end):
    state, cli = proxy
    # texts are folders on the proxy's machine (the adversarial surrogate), so give one that loads
    spec = sample(kind_class(kind), end, text={"surrogate": str(untrained_checkpoints)})
    name = f"rt-{kind}-{end}"
    added = cli("attack", "add", kind, "--name", name, *flags_of(spec))
    assert added.exit_code == 0, added.output
    assert added.output.startswith(f"added {name} ({kind} ")
    assert state.list()[-1] == Impairment(name, spec)
    listed = [item for item in json.loads(cli("attack", "ls", "--json").output) if item["name"] == name]
    assert listed == [{"name": name, "kind": kind, **spec.values()}]
    assert cli("attack", "rm", name).exit_code == 0 and name not in [i.name for i in state.list()]


@pytest.mark.parametrize("kind", KINDS)
def test_cli_refuses_another_kinds_flag_and_a_missing_one(proxy, kind):
    _, cli = proxy
    spec_class = kind_class(kind)
    own = {p.name for p in spec_class.parameters()}
    other = next((p for c in kind_classes() for p in c.parameters() if p.name not in own), None)
    if other is not None:
        value = other.choices[0] if other.choices else "1"
        wrong = cli("attack", "add", kind, *flags_of(sample(spec_class, "low")), other.flag, value)
        assert wrong.exit_code == 2 and f"{kind} takes " in wrong.output and f"not {other.flag}" in wrong.output
    for p in (p for p in spec_class.parameters() if p.required):
        flags = [a for q in spec_class.parameters() if q.name != p.name and q.required
                 for a in (q.flag, str(getattr(sample(spec_class, "low"), q.name)))]
        missing = cli("attack", "add", kind, *flags)
        assert missing.exit_code == 2 and f"{kind} needs {p.flag}" in missing.output


def test_a_shared_flag_shows_each_kinds_own_help():
    rate = next(p for p in kind_class("drop").parameters() if p.name == "rate")
    other = dataclasses.replace(rate, help="share of frames held up.", default=0.5)
    assert _flag_help([("drop", rate), ("spike", other), ("burst", other)]) == \
        "drop: probability in 0..1 that a frame is lost. spike, burst: share of frames held up. [default: 0.5]"


def test_cli_help_lists_every_kind_with_its_flags():
    text = CliRunner().invoke(proxy_cli, ["attack", "add", "--help"]).output
    for spec_class in kind_classes():
        assert spec_class.summary.split("\n")[0] in text
        for p in spec_class.parameters():
            assert p.usage() in text and f"{p.flag} " in text


# --- the proxy's core knows no kind by name ------------------------------------------------------------
@pytest.mark.parametrize("module", PROXY_CORE)
def test_the_proxy_core_names_no_kind(module):
    """state, service, cli, ... loop over the registry: no kind's name or class (so no isinstance chain)."""
    tree = ast.parse((Path(impairments.__file__).parents[1] / module).read_text())
    classes = {c.__name__ for c in kind_classes()}
    named = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in KINDS]
    named += [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in classes]
    named += [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in classes]
    named += [a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names if a.name in classes]
    named += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and ".kinds" in (n.module or "")]
    assert named == []


# --- docs/link.md's worked example -----------------------------------------------------------------------
DOC_EXAMPLE_CHECK = """
from click.testing import CliRunner
from channel_proxy.cli import main
from channel_proxy.impairments import Impairment, kind_class, names
spike = kind_class("spike")
assert names()[-1] == "spike" and spike.__module__ == "channel_proxy.impairments.kinds.spike", names()
item = Impairment("s", spike(0.05, 200.0).check())
assert Impairment.from_message(item.to_message()) == item
try:
    spike(2.0, 5.0).check()
    raise AssertionError("rate 2 accepted")
except ValueError as err:
    assert str(err) == "spike rate must lie in 0..1, got 2.0", err
draws = iter([0.01, 0.9])
assert spike(0.05, 200.0).added_delay_s(lambda: next(draws)) == 0.2
assert spike(0.05, 200.0).added_delay_s(lambda: next(draws)) == 0.0
assert "spike   --rate P --ms MS     hold a frame" in CliRunner().invoke(main, ["attack", "add", "--help"]).output
"""


def test_the_docs_worked_example_is_a_proto_message_and_one_module(tmp_path):
    """docs/link.md's `spike` code, applied to copies of link.proto and the proxy, gives a working kind."""
    doc = (REPO_ROOT / "docs" / "link.md").read_text()
    blocks = re.findall(r"```(\w+)\n(.*?)```", doc[doc.index("## Adding an impairment kind"):], re.S)
    (message, oneof), module = [b for lang, b in blocks if lang == "proto"], next(b for lang, b in blocks
                                                                                   if lang == "python")
    for package in ("protos", "channel_proxy"):
        shutil.copytree(REPO_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    proto = tmp_path / "protos" / "diffusec" / "link" / "v1" / "link.proto"
    entry = next(line for line in oneof.splitlines() if "spike" in line)
    text = proto.read_text().replace("message Impairment {", message + "\nmessage Impairment {", 1)
    end_of_oneof = text.index("\n  }", text.index("oneof kind {"))   # the entry goes last
    proto.write_text(f"{text[:end_of_oneof]}\n{entry}{text[end_of_oneof:]}")
    (tmp_path / "channel_proxy" / "impairments" / "kinds" / "spike.py").write_text(module)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO_ROOT)])}  # the copies first
    for args in (["-m", "protos.generate"], ["-c", DOC_EXAMPLE_CHECK]):
        done = subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
