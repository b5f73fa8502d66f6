import math

import pandas as pd
import pytest

from bench.metrics import registry as metrics
from reports.build import ReportOptions
from reports.tables import MetricTable, csv, latex, latex_escape, markdown, rank_marks


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"edge_f1_in": [0.5, 0.7, 0.6], "fid": [10.0, 30.0, 20.0], "psnr_out": [math.nan, 21.0, 25.0]},
        index=["text-only", "global", "z0"],
    )


def test_best_is_bold_and_second_underlined_in_each_direction():
    lines = markdown(MetricTable(frame())).strip().splitlines()
    assert lines[0] == "| method | edge_f1_in ↑ | fid ↓ | psnr_out ↑ |"
    assert lines[2] == "| text-only | 0.500 | **10.00** | n/a |"
    assert lines[3] == "| global | **0.700** | 30.00 | 21.00 |"  # psnr_out: two values, so only the best is marked
    assert lines[4] == "| z0 | <u>0.600</u> | <u>20.00</u> | **25.00** |"


def test_cells_carry_ci_in_both_formats_and_daggers():
    mean = frame()
    lo, hi = mean - 0.1, mean + 0.3
    marked = pd.DataFrame(False, index=mean.index, columns=mean.columns)
    marked.at["global", "fid"] = True
    plus_minus = markdown(MetricTable(mean, lo, hi, marked)).splitlines()
    assert plus_minus[3] == "| global | **0.700 ± 0.200** | 30.00 ± 0.20† | 21.00 ± 0.20 |"
    interval = markdown(MetricTable(mean, lo, hi, ci="interval")).splitlines()
    assert interval[3] == "| global | **0.700 [0.600, 1.000]** | 30.00 [29.90, 30.30] | 21.00 [20.90, 21.30] |"
    with pytest.raises(ValueError, match="ci\n  Input should be 'pm' or 'interval'"):
        ReportOptions(ci="brackets")


def test_ties_at_the_shown_precision_share_the_mark_and_undirected_metrics_are_never_marked():
    values = pd.Series([0.1234, 0.1231, 0.5, 0.2], index=list("abcd"))
    assert rank_marks(values, False, digits=3) == {"a": "best", "b": "best", "d": "second"}
    assert rank_marks(values, None, digits=3) == {}
    table = markdown(MetricTable(pd.DataFrame({"edge_density_out": [0.1, 0.2, 0.3]}, index=list("abc"))))
    assert "**" not in table and "<u>" not in table
    assert "| method | edge_density_out |" in table  # no arrow: no better direction


def test_differences_are_signed_without_negative_zero():
    table = MetricTable(pd.DataFrame({"edge_f1_in": [0.0201, -0.00001]}, index=["a", "b"]), ranked=False, signed=True)
    assert markdown(table).splitlines()[2:] == ["| a | +0.020 |", "| b | +0.000 |"]


def test_random_network_variants_keep_their_name_and_direction():
    assert metrics.base_of("fid_random-inception") == ("fid", "random-inception")
    assert metrics.base_of("edge_ssim_in") == ("edge_ssim_in", "")
    assert metrics.base_of("lpips_out_ci_lo") is None and metrics.base_of("plan_items") is None
    assert metrics.label("clip_score_ViT-B-16-random") == "CLIP score (ViT-B-16-random)"
    assert metrics.label("fid", "shapes-net") == "FID-shapes" and metrics.label("fid", "inception") == "FID"
    assert metrics.higher_is_better("lpips_out_lpips-random-alexnet") is False
    assert metrics.metric_columns({"psnr_out", "fid_random-inception", "edge_f1_in", "edge_recall_in", "plan_items"}) == [
        "fid_random-inception", "edge_f1_in", "psnr_out"]


def test_latex_escapes_text_and_csv_writes_missing_as_na():
    assert latex_escape("z0 λ 1e-3 & 50% of #_{x}") == r"z0 $\lambda$ 1e-3 \& 50\% of \#\_\{x\}"
    text = latex(MetricTable(frame(), caption="FID ↓"))
    assert r"\begin{tabular}{lccc}" in text and r"\caption{FID $\downarrow$}" in text and r"\textbf{10.00}" in text
    written = csv(MetricTable(frame(), frame() - 1, frame() + 1))
    assert written.splitlines()[0] == "method,edge_f1_in,edge_f1_in_ci_lo,edge_f1_in_ci_hi,fid,fid_ci_lo,fid_ci_hi,psnr_out,psnr_out_ci_lo,psnr_out_ci_hi"
    assert written.splitlines()[1].endswith("n/a,n/a,n/a")


def test_latex_groups_columns_by_condition_when_a_run_measured_several(tmp_path):
    import shutil
    import subprocess

    several = pd.DataFrame({"fid": [1.0, 2.0], "edge_f1_in": [0.5, 0.6], "edge_leakage_out": [0.1, 0.2], "depth_rmse_in": [20.0, 30.0],
                            "depth_leakage_out": [0.3, 0.4], "ssim_out": [0.9, 0.8]}, index=["a", "b"])
    body = latex(MetricTable(several))
    assert (r" & \multicolumn{1}{c}{image} & \multicolumn{2}{c}{edges} & \multicolumn{2}{c}{depth} & "
            r"\multicolumn{1}{c}{preservation} \\") in body
    assert r"\cmidrule(lr){3-4} \cmidrule(lr){5-6}" in body
    assert "multicolumn" not in latex(MetricTable(frame()))  # one condition: no group row
    engine = shutil.which("pdflatex")
    if engine is None:  # .ci/run installs it; the group row's assertions above hold either way
        return
    from reports.tables import latex_document

    (tmp_path / "t.tex").write_text(latex_document(body))
    result = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]
