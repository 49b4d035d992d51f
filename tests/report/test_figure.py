"""Figures written as PNG, PDF and SVG: real files, text kept as text, same bytes every time."""

import xml.etree.ElementTree as ET

import pytest

from tests.helpers.results_factory import make_result

pytest.importorskip("matplotlib", reason="reports need matplotlib (pip install .[report])")

from sc2deploy.report.figure import FIGURE_FORMATS, save  # noqa: E402
from sc2deploy.report.plots import plot_energy  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"


def _svg_text(path) -> str:
    root = ET.parse(path).getroot()  # parses as XML
    assert root.tag == f"{SVG}svg"
    return " ".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))


def test_every_format_is_a_real_file_with_its_labels_as_text(tmp_path):
    docs = [make_result("pi4/onnx"), make_result("pi4/tflite", energy="modeled")]
    paths = save(plot_energy(docs), tmp_path / "energy")
    assert sorted(paths) == sorted(FIGURE_FORMATS)
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = paths["pdf"].read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert b"/FontFile2" in pdf  # TrueType embedded (pdf.fonttype 42): text, not outlines
    text = _svg_text(paths["svg"])
    for label in ("energy per image (mJ)", "pi4/onnx", "pi4/tflite", "compute: modeled (rpi4)",
                  "radio: modeled (link TX power × airtime)", "compute: measured (ina2xx)"):
        assert label in text, label


def test_same_figure_same_bytes(tmp_path):
    docs = [make_result()]
    first = save(plot_energy(docs), tmp_path / "a")
    again = save(plot_energy(docs), tmp_path / "b")
    for fmt in FIGURE_FORMATS:
        assert first[fmt].read_bytes() == again[fmt].read_bytes(), fmt
