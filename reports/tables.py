"""Paper tables: rows (methods) × metric columns with ↑/↓, mean and 95% CI, best bold and second underlined per column.

One table model, three renderings: Markdown (README, terminal), LaTeX booktabs (paper; a standalone document
beside it so it can be compiled as is) and CSV (exact numbers: mean, ci_lo, ci_hi per metric). Cells a run
lacks are "n/a", never 0. A dagger marks cells whose paired comparison with the reference method excludes 0.
"""

import math
import re
import unicodedata
from dataclasses import dataclass, field

import pandas as pd

from bench.metrics import registry as metrics
from localctrl.common.text_table import markdown_table
from localctrl.config import CiFormat

NOT_AVAILABLE = "n/a"  # a metric a run lacks: never shown as 0
DAGGER = "†"


@dataclass
class MetricTable:
    mean: pd.DataFrame  # index: row labels; columns: metric keys
    lo: pd.DataFrame | None = None  # 95% CI bounds, same shape (NaN: no interval)
    hi: pd.DataFrame | None = None
    marked: pd.DataFrame | None = None  # True: a dagger (the paired CI against the reference excludes 0)
    ranked: bool = True  # bold best / underline second per column, in each metric's direction
    headers: dict[str, str] = field(default_factory=dict)  # metric key → column title (default: the key)
    caption: str = ""
    row_title: str = "method"
    signed: bool = False  # differences: "+0.012"
    ci: CiFormat = "pm"
    unranked: list[str] = field(default_factory=list)  # rows shown but never ranked (published anchors)

    @property
    def columns(self) -> list[str]:
        return list(self.mean.columns)

    def header(self, column: str) -> str:
        return self.headers.get(column, column)


def rank_marks(values: pd.Series, higher_is_better: bool | None, digits: int | None = None) -> dict:
    """Index → "best" / "second" for the top two distinct values of a column (ties share the mark).

    Values are compared as shown (rounded to `digits`): two cells that read the same get the same mark. With two
    values only, "second" would just mean "worst", so only the best is marked.
    """
    if higher_is_better is None:
        return {}
    shown = values.round(digits) if digits is not None else values
    distinct = sorted(shown.dropna().unique(), reverse=higher_is_better)
    if shown.notna().sum() < 3:
        distinct = distinct[:1]
    marks = {}
    for mark, value in zip(("best", "second"), distinct):
        marks.update({index: mark for index in shown.index[shown == value]})
    return marks


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _get(frame: pd.DataFrame | None, row, column):
    if frame is None or column not in frame.columns or row not in frame.index:
        return None
    return frame.at[row, column]


def cells(table: MetricTable) -> list[tuple[str, list[tuple[str, str | None, bool]]]]:
    """[(row label, [(text, "best" | "second" | None, dagger) per column])] — the content every rendering shares."""
    ranked = table.mean.drop(index=table.unranked)
    marks = {c: rank_marks(ranked[c], metrics.higher_is_better(c), metrics.spec(c).digits) if table.ranked else {}
             for c in table.columns}
    rows = []
    for row in table.mean.index:
        out = []
        for column in table.columns:
            value = table.mean.at[row, column]
            if _missing(value):
                out.append((NOT_AVAILABLE, None, False))
                continue
            if row in table.unranked:  # a published number, as printed (no rounding to our digits, no interval)
                out.append((f"{value:g}", None, False))
                continue
            digits = metrics.spec(column).digits
            sign = "+" if table.signed else ""
            value = round(value, digits) + 0.0  # + 0.0: no "-0.000"
            text = f"{value:{sign}.{digits}f}"
            lo, hi = _get(table.lo, row, column), _get(table.hi, row, column)
            if not (_missing(lo) or _missing(hi)):
                if table.ci == "pm":
                    text += f" ± {(hi - lo) / 2:.{digits}f}"
                else:
                    text += f" [{round(lo, digits) + 0.0:{sign}.{digits}f}, {round(hi, digits) + 0.0:{sign}.{digits}f}]"
            dagger = _get(table.marked, row, column)
            out.append((text, marks[column].get(row), not _missing(dagger) and bool(dagger)))
        rows.append((str(row), out))
    return rows


def _title(table: MetricTable, column: str) -> str:
    arrow = metrics.arrow(column)
    return f"{table.header(column)} {arrow}" if arrow else table.header(column)


# --- Markdown -----------------------------------------------------------------------------------------------------

def markdown(table: MetricTable) -> str:
    rows = []
    for row, row_cells in cells(table):
        shown = [row]
        for text, mark, dagger in row_cells:
            text = f"**{text}**" if mark == "best" else f"<u>{text}</u>" if mark == "second" else text
            shown.append(text + (DAGGER if dagger else ""))
        rows.append(shown)
    return markdown_table([table.row_title] + [_title(table, c) for c in table.columns], rows)


# --- LaTeX (booktabs) ---------------------------------------------------------------------------------------------

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
                  "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_LATEX_SYMBOLS = {"λ": r"$\lambda$", "α": r"$\alpha$", "β": r"$\beta$", "γ": r"$\gamma$", "σ": r"$\sigma$", "μ": r"$\mu$",
                  "ε": r"$\epsilon$", "τ": r"$\tau$", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "±": r"$\pm$",
                  "†": r"$^\dagger$", "²": r"$^2$", "×": r"$\times$", "≤": r"$\le$", "≥": r"$\ge$", "–": "--", "—": "---",
                  "Δ": r"$\Delta$", "→": r"$\rightarrow$", "…": r"\ldots{}", "−": "$-$", "·": r"$\cdot$", "ẑ": r"$\hat{z}$"}


def _latex_char(ch: str) -> str:
    if ch in _LATEX_SPECIAL or ch in _LATEX_SYMBOLS:
        return _LATEX_SPECIAL.get(ch) or _LATEX_SYMBOLS[ch]
    if ord(ch) < 0x180:  # ASCII and Latin accents: pdflatex's utf8 + T1 fonts set them
        return ch
    plain = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
    return plain or "?"  # anything else would stop pdflatex ("Unicode character not set up")


def latex_escape(text: str) -> str:
    """Plain text → LaTeX that pdflatex accepts (special characters escaped, common symbols as math)."""
    return "".join(_latex_char(ch) for ch in text)


def group_rows(columns: list[str]) -> list[str]:
    """A header row naming each run of columns of one family (edges, depth, segmentation, …), with rules under them,
    when the table measured more than one condition's fidelity; else none."""
    groups = [metrics.group(column) for column in columns]
    if len(set(groups) & set(metrics.CONDITION_GROUPS.values())) < 2:
        return []
    spans, start = [], 0
    for index in range(1, len(groups) + 1):
        if index == len(groups) or groups[index] != groups[start]:
            spans.append((groups[start], start + 2, index + 1))  # LaTeX column numbers: 1 is the row title
            start = index
    cells = [""] + [rf"\multicolumn{{{last - first + 1}}}{{c}}{{{name}}}" for name, first, last in spans]
    rules = " ".join(rf"\cmidrule(lr){{{first}-{last}}}" for _, first, last in spans)
    return [" & ".join(cells) + r" \\", rules]


def latex(table: MetricTable, label: str = "tab:results") -> str:
    """A `table` float with a booktabs `tabular`, to \\input into a paper (needs booktabs and graphicx)."""
    columns = len(table.columns)
    lines = [r"\begin{table}[ht]", r"\centering", rf"\caption{{{latex_escape(table.caption)}}}", rf"\label{{{label}}}"]
    wide = columns > 5  # scaled to the text width: a paper's column is narrower than 6 metric columns with CIs
    if wide:
        lines.append(r"\resizebox{\linewidth}{!}{%")
    lines += [rf"\begin{{tabular}}{{l{'c' * columns}}}", r"\toprule", *group_rows(table.columns),
              " & ".join(latex_escape(t) for t in [table.row_title] + [_title(table, c) for c in table.columns]) + r" \\", r"\midrule"]
    for row, row_cells in cells(table):
        shown = [latex_escape(row)]
        for text, mark, dagger in row_cells:
            text = latex_escape(text)
            text = rf"\textbf{{{text}}}" if mark == "best" else rf"\underline{{{text}}}" if mark == "second" else text
            shown.append(text + (r"$^\dagger$" if dagger else ""))
        lines.append(" & ".join(shown) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}" + ("%" if wide else "")]
    if wide:
        lines.append("}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def latex_document(*bodies: str) -> str:
    """A minimal article around table floats: compiles with pdflatex as is."""
    preamble = [r"\documentclass{article}", r"\usepackage[T1]{fontenc}", r"\usepackage{booktabs}", r"\usepackage{graphicx}",
                r"\usepackage[margin=2cm]{geometry}", r"\begin{document}"]
    return "\n".join(preamble + list(bodies) + [r"\end{document}"]) + "\n"


def latex_label(name: str) -> str:
    return "tab:" + re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")


# --- CSV ----------------------------------------------------------------------------------------------------------

def csv(table: MetricTable) -> str:
    """Exact numbers: per metric its mean, ci_lo, ci_hi (and whether the paired CI excludes 0); missing = n/a."""
    parts = {}
    for column in table.columns:
        parts[column] = table.mean[column]
        for name, frame in (("ci_lo", table.lo), ("ci_hi", table.hi)):
            if frame is not None and column in frame.columns:
                parts[f"{column}_{name}"] = frame[column].reindex(table.mean.index)
        if table.marked is not None and column in table.marked.columns:
            parts[f"{column}_paired_ci_excludes_0"] = table.marked[column].reindex(table.mean.index)
    frame = pd.DataFrame(parts, index=table.mean.index)
    frame.index.name = table.row_title
    return frame.to_csv(na_rep=NOT_AVAILABLE)
