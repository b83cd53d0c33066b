"""`diffusec eval --channel` and the Pipeline's link channel: AWGN's JSON and numbers unchanged,
fading fields only under fading, clear refusals."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from diffusec.cli import main
from shared import cli_options, fading
from shared.channel import awgn
from shared.pipeline import Pipeline

FADING_FIELDS = {"channel", "k_db", "fading_block", "csi", "pilot_symbols", "equaliser"}


def run_eval(checkpoints, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["eval", "--data", "sample", "--threads", "1", "--system", "vit", "--n", "4",
                                       "--checkpoints", str(checkpoints), *args])
    return result.exit_code, result.output


def payload_of(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_awgn_json_has_no_fading_fields_and_same_figures(untrained_checkpoints):
    code, default = run_eval(untrained_checkpoints, "--json")
    code_awgn, explicit = run_eval(untrained_checkpoints, "--json", "--channel", "awgn")
    assert code == code_awgn == 0, default + explicit
    first, second = payload_of(default), payload_of(explicit)
    assert not FADING_FIELDS & first.keys()
    assert (first["accuracy"], first["ssim"]) == (second["accuracy"], second["ssim"])


def test_fading_json_names_the_channel(untrained_checkpoints):
    code, out = run_eval(untrained_checkpoints, "--json", "--channel", "rician", "--k-db", "6", "--fading-block", "32",
                         "--csi", "pilot", "--pilot-symbols", "4")
    assert code == 0, out
    payload = payload_of(out)
    assert {k: payload[k] for k in FADING_FIELDS} == {"channel": "rician", "k_db": 6.0, "fading_block": 32,
                                                      "csi": "pilot", "pilot_symbols": 4, "equaliser": "zf"}
    assert 0.0 <= payload["ssim"] <= 1.0


@pytest.mark.parametrize("args, message", [
    (("--system", "classifier", "--channel", "rayleigh"), "has no link"),
    (("--system", "jpeg-ldpc", "--channel", "rayleigh", "--equaliser", "mmse"), "need the zf equaliser"),
    (("--k-db", "3"), "rician only"),
    (("--channel", "rician",), "needs its K factor"),
    (("--csi", "pilot"), "rayleigh and rician only"),
    (("--equaliser", "zf"), "rayleigh and rician only"),
    (("--channel", "rayleigh", "--pilot-symbols", "4"), "csi=pilot only"),
])
def test_fading_options_are_refused_where_they_mean_nothing(untrained_checkpoints, args, message):
    code, out = run_eval(untrained_checkpoints, *args)
    assert code == 2 and message in out


def test_pipeline_channel_is_awgn_by_default_and_fades_when_set():
    z = torch.randn(2, 768, generator=torch.Generator().manual_seed(0))
    pipeline = Pipeline(None, None, None, None, None)
    assert torch.equal(pipeline.channel(z, 10.0, torch.Generator().manual_seed(1)),
                       awgn(z, 10.0, torch.Generator().manual_seed(1)))
    pipeline.link_channel = fading.LinkChannel("rayleigh")
    faded = pipeline.channel(z, 10.0, torch.Generator().manual_seed(1))
    assert faded.shape == z.shape and not torch.equal(faded, awgn(z, 10.0, torch.Generator().manual_seed(1)))


def test_cli_choices_match_the_library():
    assert cli_options.CHANNEL_KINDS == fading.CHANNEL_KINDS and cli_options.CSI_MODES == fading.CSI_MODES
    assert cli_options.EQUALISERS == fading.EQUALISERS
