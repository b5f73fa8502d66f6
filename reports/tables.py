"""Paper tables: methods as rows, metrics as columns, best bold and second underlined per column."""

import math

import pandas as pd

NOT_AVAILABLE = "n/a"  # a metric a run lacks: never shown as 0


def rank_marks(values: pd.Series, higher_is_better: bool) -> dict:
    """Index → "best" / "second" for the top two distinct values of a column (ties share the mark)."""
    distinct = sorted(values.dropna().unique(), reverse=higher_is_better)
    marks = {}
    for mark, value in zip(("best", "second"), distinct):
        marks.update({index: mark for index in values.index[values == value]})
    return marks


def markdown_table(table: pd.DataFrame, higher_is_better: dict[str, bool], digits: int = 3) -> str:
    """Markdown for `table` (rows: methods, columns: metrics) with ↑/↓ in headers and the best marked."""
    columns = list(table.columns)
    header = ["method"] + [f"{column} {'↑' if higher_is_better[column] else '↓'}" for column in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    marks = {column: rank_marks(table[column], higher_is_better[column]) for column in columns}
    for method, row in table.iterrows():
        cells = [str(method)]
        for column in columns:
            value = row[column]
            text = NOT_AVAILABLE if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"
            mark = marks[column].get(method)
            cells.append(f"**{text}**" if mark == "best" else f"<u>{text}</u>" if mark == "second" else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
