"""`localctrl report`: read bench runs, write the tables and figures into one folder, and log that folder with the runs.

Files (in --out):
    report.md                      everything below, with the figures embedded
    report.tex                     a standalone LaTeX document with every table (pdflatex report.tex)
    main-table.{md,tex,csv}        methods × headline metrics (the .tex is a table float to \\input)
    paired.{md,tex,csv}            differences to the reference method with paired-bootstrap 95% CIs
    ablation-<key>.{md,tex,csv}    one per sweep coordinate (λ, filter, weighting, resize)
    mask-bins.{md,tex,csv}         in-mask fidelity by mask size (small / medium / large)
    all-metrics.csv                every logged aggregate, long format (run, method, metric, mean, ci_lo, ci_hi)
    figures/*.png, figures/*.pdf   tradeoff, lambda, qualitative, training
    comparison.html, comparison/   per item, every method's image and per-sample scores, sortable (reports.comparison)
"""

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pandas as pd

from localctrl.config import CiFormat, Section
from reports import ablations, anchors, captions, main_table, mask_bins, tables
from reports.comparison import build_page
from reports.doc_block import find_block, update_doc
from reports.figures import save
from reports.figures.qualitative import qualitative_figure
from reports.figures.sweep_curves import lambda_figure
from reports.figures.tradeoff import tradeoff_figure
from reports.figures.training import training_figure
from reports.paired import Paired, paired_comparisons
from reports.runs import ReportError, SuiteRun, download_folder, latest_run_id, load_suite_run, per_sample, read_text

ARTIFACT_PATH = "report"


class ReportOptions(Section):
    out: Path | None = None  # default: localctrl-runs/report/<suite> (<suite>-compare when comparing)
    reference: str | None = None  # method the paired comparisons are against (default: the suite's z0 method)
    ci: CiFormat = "pm"  # "pm": mean ± CI half-width; "interval": mean [lo, hi]
    metrics: list[str] | None = None  # main-table columns (default: the headline metrics logged)
    paired: bool = True
    figures: bool = True
    log: bool = True  # also log the folder as artifacts of the parent run(s)
    n_boot: int = 1000
    doc: Path | None = None  # a Markdown file whose block for the suite gets the main table and trade-off figure (reports.doc_block)


@dataclass
class Report:
    runs: list[SuiteRun]
    out: Path
    markdown: str  # the main table with its caption
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    logged: list[str] = field(default_factory=list)  # "run id/artifact path" the folder was logged to
    documented: list[Path] = field(default_factory=list)  # files --doc rewrote (the Markdown file, its figure)


def resolve_run_ids(suite_run: str | None = None, suite: str | None = None, compare: list[str] | None = None) -> list[str]:
    """Exactly one of: a parent run id, a suite name (its latest finished run), or several run ids to compare."""
    given = [name for name, value in (("--suite-run", suite_run), ("--suite", suite), ("--compare", compare)) if value]
    if len(given) != 1:
        raise ReportError("give exactly one of --suite-run ID, --suite NAME or --compare ID ID ..." +
                          (f" (got {', '.join(given)})" if given else ""))
    if suite_run:
        return [suite_run]
    if suite:
        return [latest_run_id(suite)]
    ids = list(dict.fromkeys(part for value in compare for part in value.split(",") if part))
    if len(ids) < 2:
        raise ReportError("--compare needs two run ids or more (for one run use --suite-run)")
    return ids


def default_out(runs: list[SuiteRun]) -> Path:
    suites = "+".join(dict.fromkeys(run.suite for run in runs))
    return Path("localctrl-runs/report") / (suites if len(runs) == 1 else f"{suites}-compare")


def _write(path: Path, text: str, files: list[Path]) -> None:
    path.write_text(text, encoding="utf-8")
    files.append(path)


def _write_table(out: Path, name: str, table: tables.MetricTable, files: list[Path], prefix: str) -> str:
    """name.md / name.tex / name.csv; returns the LaTeX float for report.tex (labelled tab:<suite>-<name>)."""
    _write(out / f"{name}.md", tables.markdown(table) + "\n" + table.caption + "\n", files)
    body = tables.latex(table, label=tables.latex_label(f"{prefix}-{name}"))
    _write(out / f"{name}.tex", body, files)
    _write(out / f"{name}.csv", tables.csv(table), files)
    return body


def long_metrics(runs: list[SuiteRun]) -> pd.DataFrame:
    records = []
    for run in runs:
        for method in run.methods:
            for key, value in method.metrics.items():
                if key.endswith(("_ci_lo", "_ci_hi")):
                    continue
                records.append({"run_id": run.run_id, "suite": run.suite, "method": method.name, "label": method.label, "metric": key,
                                "mean": value, "ci_lo": method.metrics.get(f"{key}_ci_lo"), "ci_hi": method.metrics.get(f"{key}_ci_hi")})
    return pd.DataFrame.from_records(records, columns=["run_id", "suite", "method", "label", "metric", "mean", "ci_lo", "ci_hi"])


def _paired(runs: list[SuiteRun], options: ReportOptions, notes: list[str]) -> list[Paired]:
    if not options.paired:
        return []
    found = []
    for run in runs:
        try:
            found.append(paired_comparisons(run, options.reference, n_boot=options.n_boot))
        except ReportError as error:
            if options.reference:  # asked for by name: a mistake to report, not to skip
                raise
            notes.append(f"paired comparisons skipped: {error}")
    return found


def _bench_notes(run: SuiteRun) -> list[str]:
    text = read_text(run.run_id, "notes.txt") or ""
    return [f"bench ({run.short_id}): {line}" for line in text.splitlines() if line.strip()]


def draw_figures(runs: list[SuiteRun], folder: Path, files: list[Path], notes: list[str]) -> list[tuple[str, str]]:
    """Each figure as PNG and PDF in `folder`; returns (name, title) of those drawn, and notes why others are not."""
    drawn, stamp = [], captions.rehearsed(runs)

    def add(name: str, figure, title: str, missing: str) -> None:
        if figure is None:
            notes.append(f"figure {name}: {missing}")
            return
        if stamp:  # a figure is often seen without its caption: it says so itself
            figure.text(0.5, -0.02, captions.REHEARSAL, ha="center", va="top", fontsize=9, color="crimson")
        files.extend(save(figure, folder, name))
        drawn.append((name, title))

    add("tradeoff", tradeoff_figure(main_table.rows(runs), runs), "In-mask fidelity vs outside-mask preservation",
        "no method has both the condition's in-mask fidelity metric and a preservation metric")
    add("lambda", lambda_figure(runs), "Metrics against λ", "no run has two λ settings or more (sweep.lambda)")
    for run in runs:
        name = "qualitative" + (f"-{run.short_id}" if len(runs) > 1 else "")
        with tempfile.TemporaryDirectory() as temporary:
            local = download_folder(run.run_id, "qualitative", Path(temporary))
            figure = qualitative_figure(local, [m.name for m in run.methods]) if local else None
        add(name, figure, f"Qualitative grid ({run.short_id})", f"run {run.short_id} has no qualitative/ artifacts (logged by an older bench)")
    add("training", training_figure(runs), "Training curves", "no linked training run with logged losses in this store")
    return drawn


def write_tables(runs: list[SuiteRun], keys: list[str], paired: list[Paired], options: ReportOptions, out: Path,
                 files: list[Path], notes: list[str]) -> tuple[str, list[str]]:
    """Main, paired and ablation tables (md, tex, csv), report.tex and all-metrics.csv; returns (main table
    Markdown with its caption, report.md sections)."""
    prefix = "+".join(dict.fromkeys(run.suite for run in runs))  # LaTeX labels tab:<suite>-<table>
    reference = None
    if paired:
        reference = paired[0].reference.label if len(runs) == 1 else "each run's " + ", ".join(
            dict.fromkeys(p.reference.label for p in paired))
    published, anchor_sentence = anchors.anchors(runs, keys)
    caption = " ".join(part for part in (captions.table_caption(runs, keys, options.ci, reference), anchor_sentence) if part)
    main = main_table.metric_table(runs, keys, paired, options.ci, caption, published)
    latex_bodies = [_write_table(out, "main-table", main, files, prefix)]
    sections = ["## Main table", "", tables.markdown(main), caption, ""]
    if paired and (differences := main_table.paired_table(paired, keys, options.ci)) is not None:
        latex_bodies.append(_write_table(out, "paired", differences, files, prefix))
        sections += ["## Paired comparisons", "", tables.markdown(differences), differences.caption, ""]
    for run in runs:
        chosen = next((p.reference for p in paired if p.run is run), None)
        suffix = f"-{run.short_id}" if len(runs) > 1 else ""
        for key in ablations.sweep_keys(run):
            table = ablations.ablation_table(run, key, keys, chosen, options.ci)
            if table is None:
                notes.append(f"ablation over {key} ({run.short_id}): fewer than two settings, no table")
                continue
            latex_bodies.append(_write_table(out, f"ablation-{key}{suffix}", table, files, prefix))
            title = ablations.SWEEP_NAMES.get(key, key) + (f" ({run.short_id})" if suffix else "")
            sections += [f"## Ablation: {title}", "", tables.markdown(table), table.caption, ""]
    if (by_size := mask_bins.mask_bin_table(runs, options.ci, options.n_boot)) is not None:
        latex_bodies.append(_write_table(out, "mask-bins", by_size, files, prefix))
        sections += ["## In-mask fidelity by mask size", "", tables.markdown(by_size), by_size.caption, ""]
    else:
        notes.append("mask-size table: no method has per-sample mask areas and in-mask fidelity (logged by an older bench)")
    _write(out / "report.tex", tables.latex_document(*latex_bodies), files)
    everything = out / "all-metrics.csv"
    long_metrics(runs).to_csv(everything, index=False, na_rep=tables.NOT_AVAILABLE)
    files.append(everything)
    return tables.markdown(main) + "\n" + caption + "\n", sections


def log_report(runs: list[SuiteRun], out: Path, files: list[Path]) -> list[str]:
    """The written files as artifacts of each parent run, under report/ (report/compare-<ids>/ when comparing)."""
    path = ARTIFACT_PATH if len(runs) == 1 else f"{ARTIFACT_PATH}/compare-{'-'.join(run.short_id for run in runs)}"
    client = mlflow.MlflowClient()
    for run in runs:
        for file in files:  # only what this report wrote: --out may be a folder with other things in it
            parent = file.parent.relative_to(out).as_posix()
            client.log_artifact(run.run_id, str(file), path if parent == "." else f"{path}/{parent}")
    return [f"{run.run_id}/{path}" for run in runs]


def write_comparison_pages(runs: list[SuiteRun], markdown: str, drawn: list[tuple[str, str]], out: Path, files: list[Path],
                           notes: list[str]) -> list[str]:
    """One comparison page per run (reports.comparison) from its comparison/ artifacts; returns the pages' file names."""
    pages = []
    for run in runs:
        name = "comparison" + (f"-{run.short_id}" if len(runs) > 1 else "")
        with tempfile.TemporaryDirectory() as temporary:
            local = download_folder(run.run_id, "comparison", Path(temporary))
            if local is None:
                notes.append(f"comparison page: run {run.short_id} has no comparison/ artifacts (logged by an older bench)")
                continue
            frames = {method.name: frame for method in run.methods if (frame := per_sample(method)) is not None}
            labels = {method.name: method.label for method in run.methods}
            figures = [(f"figures/{figure}.png", title) for figure, title in drawn]
            files += build_page(local, frames, labels, out, f"{run.suite} run {run.short_id}", markdown, figures, name)
        pages.append(f"{name}.html")
    return pages


def build_report(run_ids: list[str], options: ReportOptions = ReportOptions()) -> Report:
    runs = [load_suite_run(run_id) for run_id in run_ids]
    if len({run.run_id for run in runs}) < len(runs):
        raise ReportError("--compare: the same run was given twice")
    keys = main_table.columns(runs, options.metrics)
    main_table.check_same_implementations(runs, keys)
    notes = [note for run in runs for note in _bench_notes(run)]
    paired = _paired(runs, options, notes)  # before writing anything: a wrong --reference is an error, not a half report
    if options.doc is not None:  # likewise a --doc without its block
        if len(runs) != 1:
            raise ReportError("--doc writes one suite run's table into a file: give --suite or --suite-run, not --compare")
        find_block(options.doc, runs[0].suite)
    out = options.out or default_out(runs)
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []

    markdown, sections = write_tables(runs, keys, paired, options, out, files, notes)
    drawn = draw_figures(runs, out / "figures", files, notes) if options.figures else []
    if drawn:
        sections += ["## Figures", ""] + [f"![{title}](figures/{name}.png)\n" for name, title in drawn]
    pages = write_comparison_pages(runs, markdown, drawn, out, files, notes)
    if pages:
        sections += ["## Comparison pages", ""] + [f"- [{page}]({page}): per item, every method's image and scores" for page in pages] + [""]
    if notes:
        sections += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    header = f"# Report: {', '.join(f'{run.suite} run {run.run_id}' for run in runs)}\n"
    _write(out / "report.md", header + "\n" + "\n".join(sections), files)
    logged = log_report(runs, out, files) if options.log else []
    tradeoff = out / "figures" / "tradeoff.png" if any(name == "tradeoff" for name, _ in drawn) else None  # drawn now, not before
    documented = update_doc(options.doc, runs[0], markdown, tradeoff) if options.doc else []
    return Report(runs, out, markdown, files, notes, logged, documented)
