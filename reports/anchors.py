"""Published anchor rows: for a run of a known protocol (its suite's `protocol`), the numbers the protocol's paper
printed for the same condition, shown beside the run's own rows, labelled as published and never ranked with them.

The numbers and their sources live in one data file, reports/published.yaml; where a published number is known to
be wrong the file says so instead of quoting it, and the caption repeats that.
"""

from dataclasses import dataclass
from functools import cache
from importlib import resources

from localctrl.config import read_yaml
from reports.runs import SuiteRun


@dataclass(frozen=True)
class Anchor:
    label: str
    metrics: dict[str, float]


@cache
def published() -> dict:
    return read_yaml(resources.files("reports").joinpath("published.yaml").read_text(encoding="utf-8"), "reports/published.yaml")


def protocol_of(runs: list[SuiteRun]) -> str | None:
    """The protocol every run follows (None when there is none, or the runs differ)."""
    found = {run.params.get("suite.protocol", "none") for run in runs}
    return found.pop() if len(found) == 1 and found != {"none"} else None


def anchors(runs: list[SuiteRun], columns: list[str]) -> tuple[list[Anchor], str]:
    """The published rows for the runs' protocol and condition that share a column with the table, and a caption
    sentence naming their source (and any published number left out, and why)."""
    protocol = protocol_of(runs)
    if protocol is None or protocol not in published():
        return [], ""
    entry = published()[protocol]
    condition = runs[0].params.get("suite.condition")
    rows = [Anchor(row["label"], {key: float(value) for key, value in row["metrics"].items() if key in columns})
            for row in entry["rows"] if row["condition"] == condition]
    rows = [row for row in rows if row.metrics]
    if not rows and condition not in entry.get("notes", {}):
        return [], ""
    sentence = f"Rows marked (published) are not ours: they are read from {entry['source']}, and are not ranked."
    if condition in entry.get("notes", {}):
        sentence += " " + entry["notes"][condition]
    return rows, sentence
