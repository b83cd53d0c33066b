"""`diffusec bench sync|snr|link` run with tiny n and print the documented JSON keys.

Benchmarks are not timed tests: the numbers are not checked against their targets here. One
receiver + proxy (untrained models, t_D = 2) serves all three through --link/--control.
"""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from diffusec.cli import main as diffusec
from link.bench.snr import sweep
from link.stack import LinkStack, StackConfig
from link_support import make_untrained_checkpoints
from shared.stats import percentile


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    checkpoints = make_untrained_checkpoints(tmp_path_factory.mktemp("ckpt"))
    with LinkStack(StackConfig(checkpoints=str(checkpoints), t_d=2, threads=1), sink=None) as running:
        running.checkpoints = checkpoints
        yield running


def bench(*args: str) -> dict:
    result = CliRunner().invoke(diffusec, ["bench", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_bench_sync(stack):
    report = bench("sync", "--n", "20", "--warmup", "5", "--link", stack.addresses.proxy)
    assert {"sync_p50_ms", "sync_p99_ms", "echo_p50_ms", "echo_p99_ms", "ratio", "p99_ratio"} <= report.keys()
    assert 0 < report["echo_p50_ms"] <= report["echo_p99_ms"] and 0 < report["sync_p50_ms"] <= report["sync_p99_ms"]
    assert report["ratio"] == pytest.approx(report["sync_p50_ms"] / report["echo_p50_ms"], rel=1e-2)
    breakdown = report["breakdown"]
    assert {"receiver_p50_us", "snr_estimate_p50_us", "policy_p50_us", "proxy_p50_us"} <= breakdown.keys()
    assert 0 < breakdown["snr_estimate_p50_us"] < breakdown["receiver_p50_us"] and breakdown["proxy_p50_us"] > 0
    assert abs(report["snr_db_p50"] - 15.0) < 1.0


def test_bench_snr(stack):
    report = bench("snr", "--low", "-6", "--high", "18", "--step", "12", "--repeats", "3",
                   "--link", stack.addresses.proxy, "--control", stack.addresses.control)
    assert {"mean_abs_error_db", "max_abs_error_db"} <= report.keys()
    assert [row["snr_db"] for row in report["per_snr"]] == [-6.0, 6.0, 18.0]
    assert 0 <= report["mean_abs_error_db"] <= report["max_abs_error_db"] < 2.0
    # The proxy's SNR is put back.
    assert bench("snr", "--low", "3", "--high", "3", "--repeats", "1", "--link", stack.addresses.proxy,
                 "--control", stack.addresses.control)["per_snr"][0]["snr_db"] == 3.0


def test_bench_link(stack):
    report = bench("link", "--n", "6", "--warmup", "2", "--eval-batch", "4", "--threads", "1", "--data", "sample",
                   "--checkpoints", str(stack.checkpoints), "--link", stack.addresses.proxy)
    assert {"network_images_per_s", "inprocess_images_per_s", "ratio"} <= report.keys()
    assert report["network_images_per_s"] > 0 and report["inprocess_images_per_s"] > 0
    assert report["ratio"] == pytest.approx(report["network_images_per_s"] / report["inprocess_images_per_s"], rel=1e-2)
    assert report["t_d"] == 2 and report["t_p"] == 2 and report["n"] == 6  # the attached receiver's policy


def test_bench_attach_needs_both_addresses(stack):
    result = CliRunner().invoke(diffusec, ["bench", "snr", "--link", stack.addresses.proxy])
    assert result.exit_code == 2 and "--link and --control" in result.output


def test_helpers():
    assert sweep(-6, 18, 3) == [-6, -3, 0, 3, 6, 9, 12, 15, 18]
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0 and percentile([], 50) is None
    assert percentile([0.0, 10.0], 99) == pytest.approx(9.9)
