"""The table `localctrl bench` prints when it finishes: methods × headline metrics, mean [95% CI].

The paper tables (bold best, LaTeX, ablations) are `localctrl report`'s job; this is the quick look.
"""

from bench.run import BenchResult

HEADLINE = ("fid", "kid", "align_shapes", "clip_score", "edge_f1_in", "edge_leakage_out", "edge_density_out", "seg_miou_in",
            "ssim_out", "psnr_out", "lpips_out")


def headline_columns(results: dict[str, dict]) -> list[str]:
    """Headline metrics present in the results, random-network variants (`fid_random-inception`) included."""
    keys = {key for values in results.values() for key in values if not key.endswith(("_ci_lo", "_ci_hi"))}
    return [key for metric in HEADLINE for key in sorted(keys) if key == metric or key.startswith(f"{metric}_") and "random" in key]


def summary_table(result: BenchResult) -> str:
    columns = headline_columns(result.results)
    lines = [f"| method | {' | '.join(columns)} |", "|---|" + "---|" * len(columns)]
    for method, values in result.results.items():
        cells = []
        for column in columns:
            if column not in values:
                cells.append("n/a")
            elif f"{column}_ci_lo" in values:
                cells.append(f"{values[column]:.3f} [{values[f'{column}_ci_lo']:.3f}, {values[f'{column}_ci_hi']:.3f}]")
            else:
                cells.append(f"{values[column]:.4f}")
        lines.append(f"| {result.suite.methods[method].label or method} | {' | '.join(cells)} |")
    return "\n".join(lines)
