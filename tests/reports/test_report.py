"""`localctrl report` built from bench runs logged to a temporary sqlite store (synthetic runs: see conftest.py)."""

import re
import shutil
import subprocess

import mlflow
import pandas as pd
import pytest
from PIL import Image

from reports.build import ReportOptions, build_report, resolve_run_ids
from reports.runs import ReportError, load_suite_run

LABELS = ["Text only", "Global", "Masked", "Masked + z0", "z0 λ 1e-2", "z0 Laplacian"]
FIGURES = ("tradeoff", "lambda", "qualitative", "training")


def markdown_cells(text: str) -> tuple[list[str], dict[str, list[str]]]:
    """Header cells and {row label: cells} of the first Markdown table in `text`."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    split = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]
    return split[0], {cells[0]: cells[1:] for cells in split[2:]}


def column(header: list[str], rows: dict[str, list[str]], title: str) -> dict[str, str]:
    index = header.index(title) - 1
    return {label: cells[index] for label, cells in rows.items()}


def test_main_table_values_equal_the_logged_metrics(built):
    run = built.runs[0]
    table = pd.read_csv(built.out / "main-table.csv", index_col=0, float_precision="round_trip")
    assert list(table.index) == LABELS
    client = mlflow.MlflowClient()
    for method in run.methods:
        logged = client.get_run(method.run_id).data.metrics
        for key in ("fid", "kid", "align_shapes", "edge_f1_in", "edge_leakage_out", "seg_miou_in", "ssim_out", "psnr_out"):
            for name in (key, f"{key}_ci_lo", f"{key}_ci_hi"):
                if name in table.columns:
                    expected = logged.get(name, float("nan"))
                    assert table.at[method.label, name] == expected or (pd.isna(expected) and pd.isna(table.at[method.label, name])), name
    assert pd.isna(table.at["Global", "seg_miou_in"]) and pd.isna(table.at["Text only", "ssim_out"])
    assert "n/a" in (built.out / "main-table.csv").read_text()  # missing is written as n/a, never as 0


def test_best_bold_second_underlined_in_each_direction_and_missing_is_na(built):
    header, rows = markdown_cells((built.out / "main-table.md").read_text())
    assert list(rows) == LABELS
    assert "edge F1 in ↑" in header and "FID-shapes ↓" in header and "edge density out" in header
    edge = column(header, rows, "edge F1 in ↑")  # higher is better: Global (+0.20) best, λ 1e-2 (+0.05) second
    assert edge["Global"].startswith("**") and edge["z0 λ 1e-2"].startswith("<u>")
    assert sum(cell.startswith(("**", "<u>")) for cell in edge.values()) == 2
    fid = column(header, rows, "FID-shapes ↓")  # lower is better: text-only (50) best, z0 (55) second
    assert fid["Text only"] == "**50.00 ± 5.50**" and fid["Masked + z0"] == "<u>55.00 ± 5.50</u>"
    assert fid["Global"] == "80.00 ± 5.50"
    assert column(header, rows, "seg mIoU in ↑")["Global"] == "n/a"
    assert column(header, rows, "SSIM out ↑")["Text only"] == "n/a"
    assert not any(cell.startswith(("**", "<u>")) for cell in column(header, rows, "edge density out").values())  # no direction
    kid = column(header, rows, "KID-shapes ↓")
    assert kid["Text only"] == "**0.0500**"  # no CI logged: the mean alone


def test_caption_names_implementations_and_the_reference(built):
    caption = (built.out / "main-table.md").read_text()
    assert "FID-shapes / KID-shapes (shapes-net features" in caption
    assert "†: the paired-bootstrap 95% CI of the difference to Masked + z0" in caption
    assert "CLIP score:" not in caption and "LPIPS" not in caption  # off in this suite: not claimed
    assert built.markdown.startswith("| method |")


def test_paired_ci_marks_a_clearly_different_method_and_not_an_identical_one(built):
    header, rows = markdown_cells((built.out / "main-table.md").read_text())
    edge = column(header, rows, "edge F1 in ↑")
    assert edge["Global"].endswith("†")  # +0.20 on every item
    assert not any(cell.endswith("†") for cell in rows["Masked"])  # identical per sample to the reference
    assert not any(cell.endswith("†") for cell in rows["Masked + z0"])  # the reference itself
    paired = pd.read_csv(built.out / "paired.csv", index_col=0)
    assert "Masked + z0" not in paired.index
    assert paired.at["Global", "edge_f1_in"] == pytest.approx(0.20, abs=0.01)
    assert paired.at["Global", "edge_f1_in_ci_lo"] > 0 and bool(paired.at["Global", "edge_f1_in_paired_ci_excludes_0"])
    assert paired.at["Masked", "edge_f1_in"] == 0 and not bool(paired.at["Masked", "edge_f1_in_paired_ci_excludes_0"])
    assert paired.at["Masked", "psnr_out"] == pytest.approx((100.0 - 25.0) / 12)  # +inf counts as the 100 dB cap
    assert "fid" not in paired.columns  # set metrics are not paired


def check_booktabs(text: str) -> None:
    """Balanced braces, booktabs rules in order, and every row with as many cells as the column spec."""
    depth = 0
    for match in re.finditer(r"(?<!\\)[{}]", text):
        depth += 1 if match.group() == "{" else -1
        assert depth >= 0, "a closing brace without an opening one"
    assert depth == 0, "unbalanced braces"
    for tabular in re.findall(r"\\begin\{tabular\}\{(l c*)\}(.*?)\\end\{tabular\}", text, re.S):
        spec, body = tabular
        assert body.index(r"\toprule") < body.index(r"\midrule") < body.index(r"\bottomrule")
        rows = [line for line in body.splitlines() if line.rstrip().endswith(r"\\")]
        assert len(rows) >= 2
        for row in rows:
            assert len(re.findall(r"(?<!\\)&", row)) == len(spec) - 1, row


def test_latex_is_balanced_booktabs(built):
    tables = sorted(built.out.glob("*.tex"))
    assert {"main-table.tex", "paired.tex", "ablation-lambda.tex", "ablation-filter.tex", "report.tex"} <= {p.name for p in tables}
    for path in tables:
        check_booktabs(path.read_text())
    main = (built.out / "main-table.tex").read_text()
    assert r"\textbf{50.00 $\pm$ 5.50}" in main and r"$\downarrow$" in main and r"$^\dagger$" in main
    assert r"z0 $\lambda$ 1e-2" in main
    document = (built.out / "report.tex").read_text()
    assert document.startswith(r"\documentclass{article}") and r"\usepackage{booktabs}" in document


def test_report_tex_compiles_standalone(built, tmp_path):
    engine = shutil.which("pdflatex")
    if engine is None:  # .ci/run installs it (Debian's texlive-latex-recommended); a bare machine says so here
        pytest.skip("pdflatex is not installed (apt-get install texlive-latex-base texlive-latex-recommended)")
    shutil.copy(built.out / "report.tex", tmp_path)
    result = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", "report.tex"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]
    assert (tmp_path / "report.pdf").stat().st_size > 1000


def test_ablation_tables_one_per_sweep_key_in_sweep_order(built):
    header, rows = markdown_cells((built.out / "ablation-lambda.md").read_text())
    assert list(rows) == ["0 — Masked", "1e-3 — Masked + z0", "1e-2 — z0 λ 1e-2"]
    _, rows = markdown_cells((built.out / "ablation-filter.md").read_text())
    assert list(rows) == ["sobel (default) — Masked + z0", "laplacian — z0 Laplacian"]  # the reference is the default point


def test_every_figure_is_written_as_png_and_pdf(built):
    for name in FIGURES:
        for suffix in ("png", "pdf"):
            path = built.out / "figures" / f"{name}.{suffix}"
            assert path.is_file() and path.stat().st_size > 1000, path
        with Image.open(built.out / "figures" / f"{name}.png") as image:
            assert min(image.size) > 300
    assert "![Metrics against λ](figures/lambda.png)" in (built.out / "report.md").read_text()


def test_report_is_logged_as_artifacts_of_the_parent_run(built):
    run_id = built.runs[0].run_id
    client = mlflow.MlflowClient()
    logged = {artifact.path for artifact in client.list_artifacts(run_id, "report")}
    assert {"report/main-table.md", "report/main-table.tex", "report/main-table.csv", "report/figures"} <= logged
    figures = {artifact.path for artifact in client.list_artifacts(run_id, "report/figures")}
    assert "report/figures/qualitative.png" in figures
    assert built.logged == [f"{run_id}/report"]


def test_compare_puts_two_runs_of_a_suite_side_by_side_and_suite_picks_the_latest(log_run, tmp_path):
    first, second = log_run(), log_run(shift=0.01)
    assert resolve_run_ids(suite="synthetic") == [second]
    assert resolve_run_ids(compare=[first, second[:8]]) == [first, second[:8]]
    report = build_report(resolve_run_ids(compare=[f"{first},{second[:8]}"]), ReportOptions(out=tmp_path / "compare", log=False))
    assert report.out == tmp_path / "compare"
    _, rows = markdown_cells((tmp_path / "compare" / "main-table.md").read_text())
    a, b = first[:7], second[:7]
    assert list(rows)[:4] == [f"Text only ({a})", f"Text only ({b})", f"Global ({a})", f"Global ({b})"]  # method by method
    assert len(rows) == 12
    table = pd.read_csv(tmp_path / "compare" / "main-table.csv", index_col=0, float_precision="round_trip")
    runs = {run.run_id: run for run in report.runs}
    assert table.at[f"Masked + z0 ({b})", "fid"] == runs[second].method("z0").metrics["fid"] == 55.01
    assert {"qualitative-" + a, "qualitative-" + b} <= {p.stem for p in (tmp_path / "compare" / "figures").glob("*.png")}


def test_runs_are_found_by_id_prefix_and_errors_say_what_exists(log_run, tmp_path):
    run_id = log_run()
    assert load_suite_run(run_id[:7]).run_id == run_id
    assert [m.name for m in load_suite_run(run_id).methods] == ["text-only", "global", "masked", "z0", "z0-1e-2", "z0-laplacian"]
    with pytest.raises(ReportError, match=rf"no bench suite run 'nope'.*{run_id[:7]} \(synthetic, FINISHED\)"):
        load_suite_run("nope")
    with pytest.raises(ReportError, match="no finished run of suite 'other'"):
        resolve_run_ids(suite="other")
    with pytest.raises(ReportError, match="exactly one of --suite-run"):
        resolve_run_ids(suite_run=run_id, suite="synthetic")
    with pytest.raises(ReportError, match="run .* has no method 'nope'"):
        build_report([run_id], ReportOptions(out=tmp_path, reference="nope", log=False))


def test_runs_logged_before_methods_json_are_read_from_their_child_runs(log_run, private_tracking_store):
    run_id = log_run()
    with_index = load_suite_run(run_id)
    (private_tracking_store / "artifacts" / run_id / "artifacts" / "methods.json").unlink()  # as an older bench logged it
    without = load_suite_run(run_id)
    assert [(m.name, m.label, m.kind, m.sweep, m.training_run_id) for m in without.methods] == [
        (m.name, m.label, m.kind, m.sweep, m.training_run_id) for m in with_index.methods]
