"""explain: per-layer sensitivity of int8 builds, measured on the tiny split student."""

import json
import os
import stat

import pytest

from sc2deploy.builders.sensitivity import ExplainOptions, explain, harm, quantizable_nodes
from sc2deploy.cli import main
from sc2deploy.errors import UsageError
from sc2deploy.report.sensitivity import format_sensitivity
from sc2deploy.targets.onnx_graph import graph_nodes


@pytest.fixture(scope="module")
def explained(split_bundle, tmp_path_factory):
    """`sc2deploy explain` of onnx-int8 on 6 images: its printed table and results file."""
    out = tmp_path_factory.mktemp("explain") / "sens.json"
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["explain", str(split_bundle.path), "--images", "6", "--sqnr-images", "2",
                     "-o", str(out)])
    assert code == 0
    return json.loads(out.read_text()), out, printed.getvalue()


def test_every_quantizable_node_is_measured_and_exists_in_the_graphs(explained, split_bundle,
                                                                      tmp_path):
    import onnx

    from sc2deploy.builders.build import split_images
    from sc2deploy.builders.onnx_int8_build import quantize
    from sc2deploy.targets.registry import Int8Options

    doc, _, _ = explained
    head = split_bundle.file(split_bundle.manifest["artifacts"]["onnx"]["file"])
    expected = [n.name for n in quantizable_nodes(onnx.load(str(head)))]
    assert sorted(r["name"] for r in doc["nodes"]) == sorted(expected)
    assert {r["op_type"] for r in doc["nodes"]} == {"Conv", "Mul"}  # the GDN head's
    pre = split_bundle.preprocessing()
    built = tmp_path / "int8.onnx"  # what `build --target onnx-int8` makes with the defaults
    quantize(head, built, Int8Options(), [pre(p) for p in split_images(None)[0][:4]],
             split_bundle.model["input"]["name"])
    names = {n.name for n in graph_nodes(built)}
    assert all(r["name"] in names for r in doc["nodes"])
    assert doc["graph"]["nodes_in_int8_graph"] is True


def test_measures_are_real_and_ranked(explained):
    doc, _, _ = explained
    rows = doc["nodes"]
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    keys = [harm(r["int8_alone"], doc["has_tail"]) for r in rows]
    assert keys == sorted(keys, reverse=True)
    assert doc["has_tail"] and doc["images"]["evaluation"] == 6
    base = doc["all_int8"]
    assert 0.0 < base["symbols_changed_pct"] < 100.0 and base["task"]["images"] == 6
    for r in rows:
        alone = r["int8_alone"]
        assert 10.0 < alone["node_sqnr_db"] < 120.0  # one node's int8 noise, measured
        assert alone["task"]["images"] == 6 and alone["rate_change_pct"] is not None
        assert r["fp32_alone"]["output_sqnr_db"] is not None
    # one node's int8 noise at the output is less than every node's together
    assert base["output_sqnr_db"] < max(r["int8_alone"]["output_sqnr_db"] for r in rows)


def test_table_figure_and_results_file(explained):
    doc, out, printed = explained
    assert format_sensitivity(doc) in printed
    for r in doc["nodes"]:
        assert r["name"] in printed
    assert "all int8:" in printed and f"results written: {out}" in printed
    figure = out.with_suffix(".png")
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert stat.S_IMODE(os.stat(out).st_mode) & 0o644 == 0o644
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary left
    assert doc["schema"] == "sc2deploy-sensitivity" and doc["target"] == "onnx-int8"


def test_options_are_checked():
    with pytest.raises(UsageError, match="explain --target 'onnx': expected one of onnx-int8"):
        ExplainOptions(target="onnx")
    with pytest.raises(UsageError, match="--images 0.*expected at least 1"):
        ExplainOptions(images=0)
    with pytest.raises(UsageError, match="--activations 'float': expected int8 or int16"):
        ExplainOptions(activations="float")


def test_cli_refuses_a_non_int8_target(split_bundle, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["explain", str(split_bundle.path), "--target", "onnx", "-o",
              str(tmp_path / "s.json")])
    assert "invalid choice: 'onnx'" in capsys.readouterr().err


def test_tflite_int8_by_ai_edge_quantizer(split_bundle, tmp_path):
    """LiteRT's path: per-op recipes of ai-edge-quantizer on the fp32 TFLite head; the ops
    after the rounding (the NCHW transpose of the symbols) stay float."""
    pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_quantizer")
    doc = explain(split_bundle.path, ExplainOptions(target="tflite-int8", images=4,
                                                    sqnr_images=2))
    ops = {r["op_type"] for r in doc["nodes"]}
    assert {"CONV_2D", "DIV"} <= ops
    assert doc["graph"]["nodes_in_int8_graph"] is True
    # the symbols are not quantized: all int8 changes a few symbols, not most of them
    assert doc["all_int8"]["symbols_changed_pct"] < 50.0
    assert all(r["int8_alone"]["node_sqnr_db"] is not None for r in doc["nodes"])
