"""Tables as LaTeX (booktabs) and CSV; the LaTeX compiles where pdflatex is installed."""

import csv
import shutil
import subprocess

import pytest

from sc2deploy.report.table_files import latex_escape, to_csv, to_latex
from sc2deploy.report.tables import Table
from tests.helpers.results_factory import make_evaluation, make_result


def test_latex_escapes_specials_and_the_report_symbols():
    assert latex_escape("a_b & 5 % #1 {x} ~^\\") == (
        r"a\_b \& 5 \% \#1 \{x\} \textasciitilde{}\textasciicircum{}\textbackslash{}")
    assert latex_escape("24×55 — 3 °C → 61 ± 2 µs") == (
        r"24$\times$55 --- 3 \textdegree{}C $\rightarrow$ 61 $\pm$ 2 \textmu{}s")


def test_booktabs_layout_partial_rows_and_csv():
    t = Table(["configuration", "p50 ms", "note"], name="x")
    t.add(["demo/onnx", "12.5", "ok"])
    t.add(["ladon_1", "1,234", "—"], partial=True)
    tex = to_latex(t)
    assert tex.splitlines()[:4] == [r"\begin{tabular}{lrl}", r"\toprule",
                                    r"configuration & p50 ms & note \\", r"\midrule"]
    assert r"ladon\_1$^\dagger$ & 1,234 & --- \\" in tex and r"\bottomrule" in tex
    assert "incomplete (interrupted" in tex
    assert list(csv.reader(to_csv(t).splitlines())) == [t.headers, *t.rows]


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex not installed: the LaTeX tables are not compiled")
def test_every_report_table_compiles_with_pdflatex(tmp_path):
    pytest.importorskip("matplotlib", reason="reports need matplotlib")
    from sc2deploy.report.document import write_report

    docs = [make_result("demo/onnx"), make_result("x86/tflite", energy="modeled",
                                                 host_timed_on="Intel(R) Xeon(R) & Co_1"),
            make_result("ladon/onnx", complete=False), make_result("srv", kind="server"),
            make_evaluation()]
    write_report(docs, tmp_path / "rep", ("latex",))
    tables = sorted((tmp_path / "rep" / "tables").glob("*.tex"))
    assert {"overview", "latency", "pareto", "energy", "accuracy", "runs"} <= {
        p.stem for p in tables}
    body = "\n".join(f"\\noindent\\input{{{p.stem}}}\\bigskip\n" for p in tables)
    (tmp_path / "rep" / "tables" / "all.tex").write_text(
        "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n"
        f"\\begin{{document}}\n\\tiny\n{body}\\end{{document}}\n")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "all.tex"],
                         cwd=tmp_path / "rep" / "tables", capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]
    assert "Missing character" not in run.stdout
    assert (tmp_path / "rep" / "tables" / "all.pdf").read_bytes()[:5] == b"%PDF-"
