"""Report tables: conditions once per device, not per row; the Pareto table's ties."""

from sc2deploy.report.tables import device_blocks, pareto_table, run_conditions_table
from tests.helpers.results_factory import PI4_MODEL, make_result


def test_one_conditions_block_per_device_with_differences_joined():
    docs = [make_result("pi4/onnx"), make_result("pi4/tflite", energy="modeled"),
            make_result("orin/onnx", device_model="Jetson Orin Nano", energy_source="jetson")]
    docs[1]["conditions"]["packages"]["numpy"] = "2.4.7"
    blocks = device_blocks(docs)
    assert [name for name, _ in blocks] == [PI4_MODEL, "Jetson Orin Nano"]
    pi4 = dict(blocks[0][1].rows)
    assert pi4["results"] == "pi4/onnx, pi4/tflite" and pi4["device model"] == PI4_MODEL
    assert pi4["packages"] == "sc2deploy 0.4.0, numpy 2.4.6 / 2.4.7"
    assert pi4["energy source"].startswith("measured (ina2xx): ina219 power1_input (98 Hz); "
                                           "modeled (rpi4): Raspberry Pi 4 B")
    assert "nvpmodel" not in pi4  # nothing recorded: no row
    assert blocks[0][1].name == "conditions_raspberry_pi_4_model_b_rev_1_5"
    runs = run_conditions_table(docs)
    assert "hostname" not in runs.headers and "sc2deploy" not in runs.headers
    assert [r[1] for r in runs.rows] == [PI4_MODEL, PI4_MODEL, "Jetson Orin Nano"]


def test_pareto_table_names_ties_and_adds_radio_energy():
    docs = [make_result("a", head_ms=40.0), make_result("b", head_ms=40.2, bytes_mean=3009.0),
            make_result("c", head_ms=80.0, bytes_mean=3400.0)]
    rows = {r[0]: r for r in pareto_table(docs).rows}
    assert rows["a"][-1] == "yes, tied with b" and rows["b"][-1] == "yes, tied with a"
    assert rows["c"][-1] == "no"
    compute = docs[0]["energy"]["joules_per_image"]["total"]
    radio = docs[0]["link"]["radio_joules_per_image"]
    assert rows["a"][4] == (f"{compute:.3g} (measured) + {radio:.3g} (modeled) = "
                            f"{compute + radio:.3g}")
