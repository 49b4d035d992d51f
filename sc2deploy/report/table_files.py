"""The report's tables as LaTeX (booktabs) and CSV files, one of each per table.

A ``.tex`` file is a bare ``tabular`` (no float, no caption) to ``\\input`` into a paper's
own ``table`` environment; it needs ``\\usepackage{booktabs}`` (and a UTF-8 document, the
default since LaTeX 2018). Partial (interrupted) rows end with a dagger and a note. The CSV
holds the same cells as the HTML report.
"""

import csv
import io


_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
            "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
            "^": r"\textasciicircum{}", "—": "---", "–": "--", "−": "$-$", "×": r"$\times$",
            "→": r"$\rightarrow$", "±": r"$\pm$", "≤": r"$\leq$", "≥": r"$\geq$",
            "µ": r"\textmu{}", "°": r"\textdegree{}", "…": r"\ldots{}", "≈": r"$\approx$",
            "·": r"$\cdot$", "|": r"\textbar{}", "<": r"\textless{}", ">": r"\textgreater{}"}


def latex_escape(text: str) -> str:
    """Plain text as LaTeX: specials escaped, symbols the report uses as math or commands."""
    return "".join(_ESCAPES.get(c, c) for c in str(text))


def is_number_cell(text: str) -> bool:
    """Does the cell start with a number ("1,234 B", "0.98 [0.9, 1.0]")?"""
    try:
        float(text.split(" ")[0].replace(",", ""))
        return True
    except ValueError:
        return False


def _align(table) -> str:
    """Right-align columns whose cells (after the first column) all start with a number."""
    def numeric(cell: str) -> bool:
        return is_number_cell(cell) or cell == "—"
    cols = []
    for i in range(len(table.headers)):
        cells = [r[i] for r in table.rows]
        cols.append("r" if i and cells and all(numeric(c) for c in cells) else "l")
    return "".join(cols)


def to_latex(table) -> str:
    """A booktabs ``tabular`` of ``table`` (a report Table)."""
    lines = [f"\\begin{{tabular}}{{{_align(table)}}}", r"\toprule",
             " & ".join(latex_escape(h) for h in table.headers) + r" \\", r"\midrule"]
    for row, partial in zip(table.rows, table.partial):
        cells = [latex_escape(c) for c in row]
        if partial:
            cells[0] += r"$^\dagger$"
        lines.append(" & ".join(cells) + r" \\")
    lines.append(r"\bottomrule")
    lines.append(r"\end{tabular}")
    if any(table.partial):
        lines.append("\\\\[2pt]{\\footnotesize $^\\dagger$ incomplete (interrupted, or a "
                     "stream's images unanswered): numbers cover the images measured.}")
    return "\n".join(lines) + "\n"


def to_csv(table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.headers)
    writer.writerows(table.rows)
    return out.getvalue()
