"""The command line: exit codes, one-line errors, and the README kept in sync with --help."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sc2deploy.cli import build_parser, main

README = Path(__file__).resolve().parent.parent / "README.md"


def run_cli(*args):
    """Run the installed entry point the way a user does."""
    return subprocess.run([sys.executable, "-m", "sc2deploy.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=1200)


def test_info_prints_a_verified_summary(demo_bundle, capsys):
    assert main(["info", str(demo_bundle.path)]) == 0
    out = capsys.readouterr().out
    assert "entropic_student" in out and str(demo_bundle.model["latent"]["shape"]) in out
    assert "verified   manifest digest and 6 file hashes OK" in out


def test_info_json(demo_bundle, capsys):
    assert main(["info", str(demo_bundle.path), "--json"]) == 0
    assert '"format_version": 1' in capsys.readouterr().out


def test_tampered_bundle_fails_naming_the_file(demo_bundle, tmp_path):
    copy = tmp_path / "b"
    shutil.copytree(demo_bundle.path, copy)
    data = bytearray((copy / "head.onnx").read_bytes())
    data[100] ^= 0xFF
    (copy / "head.onnx").write_bytes(bytes(data))
    result = run_cli("info", copy)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "head.onnx was modified" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args,message", [
    (["export", "resnet", "--out", "{tmp}/b"], "unknown model 'resnet'"),
    (["export", "ladon", "--checkpoint", "{tmp}/absent.pt", "--out", "{tmp}/b"],
     "checkpoint not found"),
    (["export", "demo", "--input-size", "7", "--out", "{tmp}/b"], "input size 7 is out of range"),
    (["export", "ladon", "--out", "{tmp}/b"], "needs --checkpoint"),
    (["info", "{tmp}/nothing"], "bundle not found"),
])
def test_user_errors_are_one_line_with_exit_code_2(tmp_path, args, message):
    result = run_cli(*[a.format(tmp=tmp_path) for a in args])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]


def test_debug_shows_the_traceback(tmp_path):
    result = run_cli("--debug", "info", tmp_path / "nothing")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_bad_flags_are_usage_errors():
    result = run_cli("export", "demo")
    assert result.returncode == 2 and "--out" in result.stderr


def test_demo_runs_the_whole_flow_and_prints_the_report(tmp_path):
    result = run_cli("demo", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    *_, bundle_line, report_line = result.stdout.strip().splitlines()
    assert bundle_line == f"demo bundle: {(tmp_path / 'demo-bundle').resolve()}"
    html = tmp_path / "report" / "report.html"
    assert report_line == f"report: {html.resolve()}"
    assert "exporting entropic_student to ONNX" in result.stderr  # progress output
    results = sorted(p.stem for p in (tmp_path / "results").glob("*.json"))
    assert {"server", "onnx", "onnx-int8", "tflite"} <= set(results)
    assert not any(r.startswith("tensorrt") for r in results)  # host checks are not profiled
    text = html.read_text()
    assert text.count("data:image/png;base64,") >= 4 and "modeled" in text
    onnx = json.loads((tmp_path / "results" / "onnx.json").read_text())
    assert onnx["link"]["name"] == "lora-sx1276-20dbm"
    assert onnx["server_ms"]["source"] == "measured"
    assert onnx["energy"]["kind"] in ("measured", "modeled")


def _subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_readme_documents_every_option(name):
    text = README.read_text()
    section = re.search(rf"^### `sc2deploy {name}`(.*?)(?=^### |\Z)", text, re.S | re.M)
    assert section, f"README has no '### `sc2deploy {name}`' section"
    help_text = _subcommands()[name].format_help()
    for option in set(re.findall(r"--[a-z][a-z-]+", help_text)) - {"--help"}:
        assert option in section.group(1), f"README section of {name} lacks {option}"


def test_encode_then_decode(demo_bundle, tmp_path):
    from sc2deploy.preprocess import sample_images

    images = sample_images()[:2]
    out = tmp_path / "streams"
    result = run_cli("encode", demo_bundle.path, *images, "-o", out)
    assert result.returncode == 0, result.stderr
    files = sorted(out.glob("*.s2c"))
    assert [f.stem for f in files] == [p.stem for p in images]
    batch = tmp_path / "batch.s2c"
    batch.write_bytes(b"".join(f.read_bytes() for f in files))
    import numpy as np

    from sc2deploy.targets import load_runner

    with load_runner(demo_bundle, "onnx") as runner:  # the symbols encode coded: exact
        reference = np.concatenate([runner.infer(demo_bundle.preprocessing()(p))
                                    for p in images])
    for stream, expected in ((files[0], reference[0]), (batch, reference)):
        latent = tmp_path / "latent.npy"
        result = run_cli("decode", demo_bundle.path, stream, "-o", latent)
        assert result.returncode == 0, result.stderr
        np.testing.assert_array_equal(np.load(latent), expected)


def test_decode_corrupt_stream_is_a_user_error(demo_bundle, tmp_path):
    bad = tmp_path / "bad.s2c"
    bad.write_bytes(b"S2\x01" + bytes(40))
    result = run_cli("decode", demo_bundle.path, bad, "-o", tmp_path / "x.npy")
    assert result.returncode == 2 and "invalid latent shape" in result.stderr


def test_replay_models_the_ladder_on_a_trace_and_report_draws_it(ladder_bundles,
                                                                ladder_evaluations_timed,
                                                                tmp_path, capsys):
    """Issue 22 item 4: 37.5 -> 5.5 -> 37.5 kbit/s, 30 s each, one image a second."""
    ladder_evaluations = ladder_evaluations_timed
    trace = tmp_path / "trace.csv"
    trace.write_text("t_start_s,bits_per_s\n0,37500\n30,5500\n60,37500\n")
    out = tmp_path / "replay.json"
    ladder = [str(b.path) for b in ladder_bundles]
    code = main(["replay", "--ladder", *ladder, "--evaluation", *map(str, ladder_evaluations),
                 "--trace", str(trace), "--deadline-ms", "700", "--interval-ms", "1000",
                 "-o", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    doc = json.loads(out.read_text())
    rows = {line.split()[0]: line.split()[1:] for line in stdout.splitlines()
            if line.split() and line.split()[0] in ("adaptive", "demo-beta0.1", "demo-beta1",
                                                      "demo-beta3")}
    s = doc["adaptive"]["summary"]
    assert rows["adaptive"] == [str(s["images"]), f"{s['hit_rate']:.1%}",
                                f"{s['mean_top1']:.2f}%", str(s["switches"])]
    assert 85 <= s["images"] <= 90 and s["hit_rate"] >= 0.95  # the drop's images take > 1 s
    assert rows["demo-beta3"][:2] == ["90", "100.0%"]
    assert "modeled: 37.5 -> 5.5 -> 37.5 kbit/s from 0, 30, 60 s, 90 s, images one every " \
           "1000 ms" in stdout
    assert "at 30 s 37.5 -> 5.5 kbit/s: demo-beta3 after" in stdout
    assert f"next: sc2deploy report {out} -o REPORT_DIR" in stdout
    assert main(["report", str(out), "--format", "md", "-o", str(tmp_path / "r")]) == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "## Adaptive ladder" in md and "| demo-beta1 alone | modeled | 700 | 90 |" in md
    assert main(["replay", "--ladder", *ladder, "--evaluation", *map(str, ladder_evaluations),
                 "--trace", str(trace), "--deadline-ms", "700", "--min-top1", "90",
                 "-o", str(out)]) == 2
    assert "--min-top1 (energy mode) needs what energy to count" in capsys.readouterr().err
    assert main(["replay", "--ladder", *ladder, "--evaluation", str(ladder_evaluations[0]),
                 "--trace", str(trace), "--deadline-ms", "700", "-o", str(out)]) == 2
    assert "no evaluation of bundle" in capsys.readouterr().err
