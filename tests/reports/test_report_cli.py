"""`localctrl report` from the command line, and one report of a real (smoke) bench run."""

import math

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from reports.build import ReportOptions, build_report
from reports.mask_bins import bin_of

runner = CliRunner()
WIDE = {"COLUMNS": "300"}  # rich would wrap the printed paths


def test_report_command_prints_the_table_and_where_the_files_went(log_run, tmp_path):
    run_id = log_run()
    out = tmp_path / "paper"
    result = runner.invoke(app, ["report", "--suite-run", run_id[:8], "--out", str(out), "--ci", "interval", "--no-figures"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("| method |") and "| Text only | **50.00 [45.00, 56.00]** |" in result.output
    assert f"→ {out.resolve()}" in result.output and f"logged as MLflow artifacts: runs:/{run_id}/report" in result.output
    assert (out / "main-table.tex").is_file() and (out / "report.md").is_file() and not (out / "figures").exists()


def test_report_command_takes_compare_ids_and_reports_bad_input(log_run, tmp_path):
    run_id = log_run()
    result = runner.invoke(app, ["report", "--compare", run_id, "nope"], env=WIDE)  # the second id reaches --compare
    assert result.exit_code == 2 and "no bench suite run 'nope'" in result.output
    result = runner.invoke(app, ["report", "--suite-run", run_id, "--suite", "synthetic"], env=WIDE)
    assert result.exit_code == 2 and "exactly one of --suite-run ID, --suite NAME or --compare" in result.output
    result = runner.invoke(app, ["report", "--suite-run", run_id, "stray"], env=WIDE)
    assert result.exit_code == 2 and "unexpected arguments stray" in result.output
    result = runner.invoke(app, ["report", "--suite-run", run_id, "--ci", "brackets", "--out", str(tmp_path)], env=WIDE)
    assert result.exit_code == 2 and "'brackets' is not one of 'pm', 'interval'" in result.output
    result = runner.invoke(app, ["report", "--suite-run", run_id, "--metric", "fid_typo", "--out", str(tmp_path)], env=WIDE)
    assert result.exit_code == 2 and "--metric: fid_typo not logged" in result.output


def test_report_of_a_real_smoke_bench_run(tmp_path):
    from bench.run import BenchOptions, run_bench

    bench = run_bench("smoke", BenchOptions(out=tmp_path / "bench", cache=tmp_path / "cache"))
    report = build_report([bench.run_id], ReportOptions(out=tmp_path / "report"))
    table = pd.read_csv(report.out / "main-table.csv", index_col=0, float_precision="round_trip")
    assert list(table.index) == list(bench.results)  # smoke's methods have no labels: named by their keys
    assert "fid_random-inception" in table.columns and "fid" not in table.columns  # never shown as the real FID
    for method, values in bench.results.items():
        for key in table.columns:
            if not key.endswith("_paired_ci_excludes_0"):
                expected = values.get(key, math.nan)
                assert table.at[method, key] == expected or (math.isnan(expected) and math.isnan(table.at[method, key])), key
    text = (report.out / "main-table.md").read_text()
    assert "FID (random-inception) ↓" in text and "FID / KID random-inception (random weights: mechanics only)" in text
    assert "difference to trained-masked-z0" in text  # the z0 method is the default reference
    for name in ("tradeoff", "qualitative", "training"):
        assert (report.out / "figures" / f"{name}.png").stat().st_size > 1000
    assert any("figure lambda" in note for note in report.notes)  # smoke has no λ sweep: said, not drawn empty
    bins = pd.read_csv(report.out / "mask-bins.csv", index_col=0)
    scores = pd.read_parquet(next((tmp_path / "bench" / "scores").glob("random-masked-*.parquet")))
    by_size = scores["mask_area"].map(bin_of)
    for size in ("small", "medium", "large"):  # each bin's count and mean are the per-sample rows of masks that size
        measured = scores.loc[by_size == size, "edge_f1_in"].dropna()
        assert bins.at["random-masked", f"samples_{size}"] == len(measured)
        if len(measured):
            assert bins.at["random-masked", f"edge_f1_in_{size}"] == pytest.approx(measured.mean())
    assert "## In-mask fidelity by mask size" in (report.out / "report.md").read_text()

    from reports.summary import summary_table  # what `localctrl bench` prints: the same values, rounded as the report

    header, *_, last = summary_table(bench).splitlines()
    assert header.startswith("| method | FID (random-inception) ↓ |") and "edge F1 in ↑" in header
    masked = bench.results["trained-masked-z0"]
    assert last.startswith("| trained-masked-z0 |")
    assert f"{masked['edge_f1_in']:.3f} [{masked['edge_f1_in_ci_lo']:.3f}, {masked['edge_f1_in_ci_hi']:.3f}]" in last


def test_mask_size_bins_follow_editbench_bounds():
    assert [bin_of(a) for a in (0.0, 0.215, 0.216, 0.369, 0.37, 1.0)] == ["small", "small", "medium", "medium", "large", "large"]
