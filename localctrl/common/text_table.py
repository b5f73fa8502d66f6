"""Text tables, drawn one way: Markdown (readable in a terminal and a log, pasteable into notes and the README)."""


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table of already formatted cells; `|` inside a cell is escaped."""
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header), *(line(row) for row in rows)]) + "\n"
