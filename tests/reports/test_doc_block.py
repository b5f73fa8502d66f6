"""`localctrl report --doc FILE`: the suite's table and figure replace the marked block, nothing else in the file."""

from typer.testing import CliRunner

from cli import app
from localctrl.common.tracking import git_commit
from reports.doc_block import markers

runner = CliRunner()
WIDE = {"COLUMNS": "300"}


def test_doc_block_is_replaced_by_the_runs_table_and_figure_and_nothing_else(log_run, tmp_path):
    run_id = log_run()
    begin, end = markers("synthetic")
    before, after = "# A README\n\nText a person wrote, kept as is.\n\n", "\n## Later\n\nMore text ± unicode.\n"
    doc = tmp_path / "README.md"
    doc.write_text(before + begin + "\n| stale | table |\nold words\n" + end + after, encoding="utf-8")
    (tmp_path / "docs").mkdir()
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", "--suite-run", run_id, "--out", str(out), "--doc", str(doc), "--no-log"], env=WIDE)
    assert result.exit_code == 0, result.output
    text = doc.read_text(encoding="utf-8")
    assert text.startswith(before + begin + "\n") and text.endswith(end + after) and "stale" not in text
    inside = text[len(before + begin):-len(end + after)]
    main_table = (out / "main-table.md").read_text(encoding="utf-8")
    assert main_table.split("\n")[0] in inside and "| Text only | **50.00 ± 5.50** |" in inside  # the table the report wrote
    commit = git_commit()
    said = f"commit {commit[:7]}" + (" with uncommitted changes" if commit.endswith("-dirty") else "") if commit else "no git commit recorded"
    assert f"(2-core Test CPU, no GPU; {said}; the bench took 3 min 20 s from scratch, install excluded)" in inside
    figure = tmp_path / "docs" / "synthetic-tradeoff.png"
    assert figure.read_bytes() == (out / "figures" / "tradeoff.png").read_bytes()
    assert "![In-mask control vs outside-mask preservation on synthetic](docs/synthetic-tradeoff.png)" in inside
    assert f"→ {figure}, {doc}" in result.output

    again = runner.invoke(app, ["report", "--suite-run", run_id, "--out", str(out), "--doc", str(doc), "--no-log"], env=WIDE)
    assert again.exit_code == 0 and doc.read_text(encoding="utf-8") == text  # a rerun of the same run changes nothing


def test_a_doc_without_the_suites_block_is_refused_before_anything_is_written(log_run, tmp_path):
    run_id = log_run()
    doc = tmp_path / "README.md"
    doc.write_text("no markers here\n", encoding="utf-8")
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", "--suite-run", run_id, "--out", str(out), "--doc", str(doc), "--no-log"], env=WIDE)
    assert result.exit_code == 2 and f"--doc {doc}: it has no block for suite 'synthetic'" in result.output
    assert markers("synthetic")[0] in result.output and not out.exists()
    assert doc.read_text(encoding="utf-8") == "no markers here\n"


def test_report_as_a_whole_process_imports_no_torch_nor_model_libraries(log_run, tmp_path):
    """What `localctrl perf` measures of a report's cost: it reads runs and draws tables, no networks."""
    import os

    from bench.perf.reruns import imported

    run_id = log_run()
    env = {**os.environ, "COLUMNS": "300"}
    libraries = imported(["report", "--suite-run", run_id, "--out", str(tmp_path / "report"), "--no-log"], env, str(tmp_path))
    assert "mlflow" in libraries and "matplotlib" in libraries  # the parser finds what a report does import
    assert not {"torch", "diffusers", "transformers", "open_clip", "lpips", "torchmetrics"} & set(libraries), libraries
    assert (tmp_path / "report" / "main-table.md").is_file()  # it ran to the end (imports of a failed run prove nothing)
