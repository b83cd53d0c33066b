"""`diffusec report`: the --quick run's results.json shape, its Markdown and figures, and the claims check.

The run uses the shipped cifar10 models (copied, so that a missing adversarially trained
classifier can be stood in for by the receiver's own) on the embedded test sample.
"""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from click.testing import CliRunner

from diffusec.cli import main
from link_support import REPO_ROOT
from shared.report.sweep import DEFAULT_SYSTEMS, ReportConfig, quick
from shared.report.tables import claims, jpeg_reading, oracle_ratio, table_two

SHIPPED = REPO_ROOT / "checkpoints" / "cifar10"
NEEDED = ("codec", "denoiser", "classifier", "agent")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    if not all((SHIPPED / f"{k}.pt").exists() for k in NEEDED):
        pytest.skip("needs the shipped checkpoints/cifar10 models and agent")
    out = tmp_path_factory.mktemp("ckpt")
    for path in SHIPPED.glob("*"):
        if path.suffix in (".pt", ".json") and not path.name.endswith(".resume.pt"):
            shutil.copy(path, out / path.name)
    if not (out / "classifier_at.pt").exists():
        blob = torch.load(out / "classifier.pt", weights_only=True)
        torch.save({**blob, "kind": "classifier_at"}, out / "classifier_at.pt")
    return out


def test_report_quick_writes_results_json_markdown_and_figures(checkpoints, tmp_path):
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["report", "--quick", "--n", "6", "--data", "sample", "--checkpoints",
                                       str(checkpoints), "--out", str(out), "--threads", "1", "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output.strip().splitlines()[-1])
    assert payload == json.loads((out / "results.json").read_text())
    snrs = payload["config"]["snrs_db"]
    assert snrs == [-6.0, 3.0, 12.0] and payload["config"]["n"] == 6
    assert set(payload["curves"]) == set(DEFAULT_SYSTEMS)     # table (the grid oracle) only when named
    for system, curve in payload["curves"].items():
        for key in ("standard_accuracy", "robust_accuracy", "ssim"):
            assert len(curve[key]) == len(snrs), (system, key)
            assert all(0.0 <= v <= 1.0 for v in curve[key]), (system, key, curve[key])
    assert [d is not None for d in payload["curves"]["jpeg-ldpc"]["decode_failure_rate"]] == [True] * len(snrs)
    assert len(payload["curves"]["diffusec"]["mean_states"]) == len(snrs)
    assert set(payload["classifier"]) == {"receiver", "adversarially_trained"}
    # the adaptive column and the held-out attacks, for the two defences, beside Table II
    assert set(payload["adaptive"]) == {"plain", "diffusec"} and set(payload["heldout"]) == {"fgsm-8/255"}
    for system in ("plain", "diffusec"):
        assert payload["adaptive"][system]["snr_db"] == [3.0] and 0.0 <= payload["adaptive"][system]["accuracy"][0] <= 1.0
        assert len(payload["heldout"]["fgsm-8/255"][system]["accuracy"]) == 1
    # the header's cell time counts the adaptive and held-out cells too, not only Table II's
    extra_s = sum(payload["adaptive"][s]["wall_time_s"][0] + payload["heldout"]["fgsm-8/255"][s]["wall_time_s"][0]
                  for s in ("plain", "diffusec"))
    assert extra_s > 0
    assert payload["cells_wall_time_s"] == pytest.approx(sum(r["wall_time_s"] for r in payload["runs"]) + extra_s, abs=0.2)
    # one eval run per system, SNR and condition, each tagged
    assert len(payload["runs"]) == len(DEFAULT_SYSTEMS) * len(snrs) * 2
    assert {(r["system"], r["condition"]) for r in payload["runs"]} == {(s, c) for s in DEFAULT_SYSTEMS
                                                                        for c in ("standard", "pgd")}
    # the robust runs really are under attack: the classifier alone is beaten on the polluted store
    assert payload["classifier"]["receiver"]["robust_accuracy"] < payload["classifier"]["receiver"]["clean_accuracy"]
    markdown = (out / "results.md").read_text()
    assert "*(paper, quoted)*" in markdown and "DiffuSeC (proposal) (ours)" in markdown
    assert "paper protocol / adaptive" in markdown and "| fgsm-8/255 | DiffuSeC (plain) (ours) |" in markdown
    assert "CIFAR-10 (JPEG q75 copy)" in markdown and payload["commit"] in markdown
    for name in payload["figures"].values():
        assert (out / name).stat().st_size > 10_000 and name in markdown
    assert payload["figure"]["rows"][0]["snr_db"] == -3.0
    # the reading names the grid the shipped actor learned from, as agent.json and agent_grid.json say
    grid = json.loads((checkpoints / "agent_grid.json").read_text())
    assert payload["agent_grid"]["n"] == grid["header"]["n"] and payload["agent_grid"]["cells"] == len(grid["cells"])
    assert f"grid of {len(grid['cells'])} cells measured on one batch of {grid['header']['n']} images" in markdown
    # the reading's accuracies are this report's own measurements, not numbers typed into the template
    for name in ("receiver", "adversarially_trained"):
        assert f"{100 * payload['classifier'][name]['clean_accuracy']:.1f}% clean accuracy on the report's images" in markdown


def test_a_fading_report_fades_every_link_and_says_so(checkpoints, tmp_path):
    """--channel rayleigh: the same images and seeds, lower SSIM than over AWGN, and the Markdown names the channel."""
    curves = {}
    for channel in ("awgn", "rayleigh"):
        out = tmp_path / channel
        result = CliRunner().invoke(main, ["report", "--quick", "--n", "6", "--data", "sample", "--checkpoints",
                                           str(checkpoints), "--out", str(out), "--threads", "1", "--json",
                                           "--systems", "vit,plain", "--snr", "0", "--channel", channel,
                                           "--adaptive-snr", "none", "--heldout-snr", "none"],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        payload = json.loads(result.output.strip().splitlines()[-1])
        assert payload["config"]["channel"] == channel and payload["adaptive"] == {} and payload["heldout"] == {}
        curves[channel] = payload["curves"]["vit"]
    assert curves["rayleigh"]["ssim"][0] < curves["awgn"]["ssim"][0]
    markdown = (tmp_path / "rayleigh" / "results.md").read_text()
    assert "Rayleigh block fading (one coefficient per image)" in markdown
    assert "(not measured in this run: `--adaptive-snr none`)" in markdown     # skipped columns say so
    assert "(not measured in this run: `--heldout-snr none`)" in markdown
    result = CliRunner().invoke(main, ["report", "--out", str(tmp_path), "--channel", "rayleigh", "--k-db", "3"])
    assert result.exit_code == 2 and "rician only" in result.output


def test_report_refuses_bad_options_clearly(tmp_path):
    result = CliRunner().invoke(main, ["report", "--out", str(tmp_path), "--systems", "vit,bogus"])
    assert result.exit_code == 2 and "unknown system" in result.output
    result = CliRunner().invoke(main, ["report", "--out", str(tmp_path), "--snr", "3,nan"])
    assert result.exit_code == 2 and "finite numbers of dB" in result.output
    result = CliRunner().invoke(main, ["report", "--out", str(tmp_path), "--adaptive-snr", "low"])
    assert result.exit_code == 2 and "SNRs in dB, or none" in result.output
    with pytest.raises(ValueError, match="sampler"):
        ReportConfig(sampler="euler")
    assert quick(ReportConfig()).n == 24


def _result(robust: dict[str, list[float]]) -> dict:
    snrs = [-6.0, 3.0, 9.0]
    curves = {s: {"label": s, "snr_db": snrs, "robust_accuracy": v} for s, v in robust.items()}
    return {"config": {"snrs_db": snrs}, "curves": curves,
            "classifier": {"receiver": {"clean_accuracy": 0.9, "robust_accuracy": 0.0}}}


def test_claims_name_each_snr_where_an_ordering_fails():
    result = _result({"diffusec": [0.5, 0.4, 0.1], "plain": [0.5, 0.45, 0.9], "vit": [0.2, 0.3, 0.95],
                      "jpeg-ldpc": [0.1, 0.5, 0.2]})
    lines = claims(result)
    assert len(lines) == 3
    # diffusec >= plain: ties hold (-6 dB), 3 dB fails; 9 dB is above the claim's range and not checked
    assert "**does not hold** at 3 dB (40.0 vs 45.0); holds at -6 dB (50.0 vs 50.0)" in lines[0]
    assert lines[1].endswith("holds at every SNR <= 3 dB, by 15.0 to 30.0 points")   # plain > vit at -6 and 3 dB
    assert "**does not hold** at 3 dB (40.0 vs 50.0)" in lines[2]       # diffusec > jpeg-ldpc
    table = table_two(result).splitlines()
    assert len(table) == 2 + 2 + 4 + 1 and sum("(paper, quoted)" in row for row in table) == 2


def test_the_oracle_ratio_flags_each_snr_under_the_bar():
    result = _result({"diffusec": [0.5, 0.4, 0.9], "table": [0.5, 0.45, 0.9]})
    (line,) = oracle_ratio(result)
    assert "-6 dB 1.00" in line and "**3 dB 0.89**" in line and "9 dB 1.00" in line
    assert oracle_ratio(_result({"diffusec": [0.5, 0.4, 0.9]})) == []
    # A tiny run can leave the oracle at 0 at some SNR: that ratio is undefined, not a crash.
    (line,) = oracle_ratio(_result({"diffusec": [0.0, 0.25, 0.9], "table": [0.0, 0.5, 0.9]}))
    assert "-6 dB n/a (oracle 0)" in line and "**3 dB 0.50**" in line


def test_the_table_system_sits_at_the_grid_best_state(checkpoints, tmp_path):
    from shared.agent.policy import TablePolicy

    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["report", "--quick", "--n", "4", "--data", "sample", "--checkpoints",
                                       str(checkpoints), "--out", str(out), "--threads", "1", "--systems",
                                       "diffusec,table", "--snr", "3", "--adaptive-snr", "none", "--heldout-snr",
                                       "none", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output.strip().splitlines()[-1])
    assert payload["curves"]["table"]["label"] == "grid oracle (table)"
    assert payload["curves"]["table"]["mean_states"] == [list(TablePolicy.load(checkpoints, "cifar10").lookup(3.0))]
    assert "DiffuSeC (proposal) / grid oracle" in (out / "results.md").read_text()


def test_report_resumes_from_its_cell_cache(checkpoints, tmp_path):
    out = tmp_path / "report"
    args = ["report", "--n", "4", "--attack-steps", "1", "--data", "sample", "--checkpoints", str(checkpoints), "--out", str(out),
            "--threads", "1", "--systems", "vit", "--snr", "3", "--json"]
    first = json.loads(CliRunner().invoke(main, args, catch_exceptions=False).output.strip().splitlines()[-1])
    cells = json.loads((out / "results.cells.json").read_text())["cells"]
    assert set(cells) == {"vit|3|standard", "vit|3|pgd"}
    assert set(cells["vit|3|pgd"]["checkpoints"]) == {"codec.pt", "classifier.pt"}
    # A cached cell is taken as it is: mark one and see it come back; a cell whose checkpoints'
    # md5 no longer match is measured again.
    cells["vit|3|standard"]["run"]["accuracy"] = 0.123
    cells["vit|3|pgd"]["run"]["accuracy"] = 0.456
    cells["vit|3|pgd"]["checkpoints"]["codec.pt"] = "0" * 32
    saved = json.loads((out / "results.cells.json").read_text())
    saved["cells"] = cells
    (out / "results.cells.json").write_text(json.dumps(saved))
    again = json.loads(CliRunner().invoke(main, args, catch_exceptions=False).output.strip().splitlines()[-1])
    assert again["curves"]["vit"]["standard_accuracy"] == [0.123]
    assert again["curves"]["vit"]["robust_accuracy"] == first["curves"]["vit"]["robust_accuracy"]
    fresh = json.loads(CliRunner().invoke(main, args + ["--fresh"], catch_exceptions=False).output.strip().splitlines()[-1])
    assert fresh["curves"]["vit"]["standard_accuracy"] == first["curves"]["vit"]["standard_accuracy"]


def test_the_reading_counts_the_images_the_agent_grid_shares_with_the_report():
    from shared.report.tables import _images_shared_with_grid

    result = {"config": {"seed": 0, "n": 1000}, "data": "CIFAR-10 (JPEG q75 copy), test split, 1000 images (seed 0)",
              "agent_grid": {"n": 64, "seed": 0, "data": "CIFAR-10 (JPEG q75 copy), test split, 64 images (seed 0)"}}
    assert _images_shared_with_grid(result) == 64
    assert _images_shared_with_grid({**result, "config": {"seed": 1, "n": 1000}}) == 0
    other_split = {**result["agent_grid"], "data": "CIFAR-10 (JPEG q75 copy), train split, 64 images (seed 0)"}
    assert _images_shared_with_grid({**result, "agent_grid": other_split}) == 0


def test_the_jpeg_reading_gives_the_kept_share_where_images_get_through():
    def run(snr, condition, accuracy, quality):
        return {"system": "jpeg-ldpc", "snr_db": snr, "condition": condition, "accuracy": accuracy,
                "link": {"mean_jpeg_quality": quality}}
    runs = [run(-3.0, "standard", 0.1, None), run(-3.0, "pgd", 0.1, None),
            run(3.0, "standard", 0.4, 5.0), run(3.0, "pgd", 0.38, 5.0),
            run(15.0, "standard", 0.9, 40.0), run(15.0, "pgd", 0.72, 40.0)]
    (line,) = jpeg_reading({"runs": runs})
    assert "Robust over clean accuracy: 3 dB 0.95, 15 dB 0.80." in line and "-3 dB: -" in line
