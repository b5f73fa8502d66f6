"""The table `localctrl bench` prints when it finishes: methods × headline metrics, mean [95% CI].

The same table model and Markdown as the paper tables (reports.tables), from the run's results rather than from
MLflow; ablations, paired comparisons and LaTeX are `localctrl report`'s job.
"""

import pandas as pd

from bench.invocation import BenchResult
from bench.metrics import registry
from reports.tables import MetricTable, markdown


def summary_table(result: BenchResult) -> str:
    columns = registry.metric_columns({key for values in result.results.values() for key in values})
    rows = [result.suite.methods[method].label or method for method in result.results]

    def frame(suffix: str) -> pd.DataFrame:
        return pd.DataFrame([[values.get(column + suffix, float("nan")) for column in columns] for values in result.results.values()],
                            index=rows, columns=columns, dtype=float)

    features = result.suite.metrics.fid.features if result.suite.metrics.fid else None
    headers = {column: registry.label(column, features) for column in columns}
    return markdown(MetricTable(frame(""), frame("_ci_lo"), frame("_ci_hi"), headers=headers, ci="interval")).rstrip("\n")
