"""Results documents: schema validation, loading, atomic writing, raw samples."""

import copy
import json
import math
import os
import stat

import re

import numpy as np
import pytest

from sc2deploy.errors import ResultsError
from sc2deploy.results.schema import (SCHEMA, SCHEMA_VERSION, STAT_KEYS, load_results,
                                         validate, write_results)
from tests.helpers.results_factory import make_result


@pytest.mark.parametrize("kwargs", [
    {}, {"energy": "modeled"}, {"energy": "none", "link": False, "server_ms": None},
    {"complete": False}, {"baselines": False}, {"kind": "server"},
    {"energy": "modeled", "host_timed_on": "Intel(R) Xeon(R) Processor"},
    {"version": 1}, {"version": 1, "energy": "modeled"}, {"version": 2},
    {"kind": "server", "decoder": False}, {"samples": False}])
def test_factory_documents_are_valid(kwargs):
    doc = make_result(**kwargs)
    assert validate(doc, "x.json") is doc


def test_the_profiler_computes_exactly_the_schema_statistics():
    from sc2deploy.measure.stats import summarize

    assert tuple(summarize([1.0, 2.0, 3.0])) == tuple(STAT_KEYS)


def test_extra_keys_are_allowed_and_descriptive_keys_optional():
    doc = make_result()
    doc["memory"] = {"peak_rss_mb": 12.0, "rss_after_warmup_mb": None, "note": "x"}
    doc["conditions"] = {"kernel": "6.6"}
    doc["future_field"] = {"anything": [1, 2]}
    doc["latency_ms"]["warm_cache"] = make_result()["latency_ms"]["head"]
    before = copy.deepcopy(doc)
    assert validate(doc, "a.json") is doc and doc == before  # accepted, returned unchanged
    # the same objects are still checked: only the unknown keys and the missing ones pass
    for edit, where in ((lambda d: d["memory"].update(peak_rss_mb="big"), "memory.peak_rss_mb"),
                        (lambda d: d["conditions"].update(cores="4"), "conditions.cores"),
                        (lambda d: d["latency_ms"]["warm_cache"].pop("p50"),
                         "latency_ms.warm_cache")):
        broken = copy.deepcopy(doc)
        edit(broken)
        with pytest.raises(ResultsError, match=re.escape(where)):
            validate(broken, "a.json")


def _modeled_with_ci95(doc):
    doc["energy"] = make_result(energy="modeled")["energy"]
    doc["energy"]["joules_per_image"]["ci95"] = [0.1, 0.2]


def _broken(edit):
    doc = make_result()
    edit(doc)
    return doc


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["latency_ms"]["total"].pop("p99"),
     r"^a\.json: latency_ms\.total: missing required key 'p99'$"),
    (lambda d: d.pop("label"), r"^a\.json: missing required key 'label'$"),
    (lambda d: d.pop("energy"), r"^a\.json: missing required key 'energy'$"),
    (lambda d: d["latency_ms"].pop("head"), r"a\.json: latency_ms: missing required key 'head'"),
    (lambda d: d["latency_ms"]["total"].update(p99="x"),
     r"^a\.json: latency_ms\.total\.p99: expected a number, got 'x'$"),
    (lambda d: d["latency_ms"]["total"].update(p99=math.nan),
     r"latency_ms\.total\.p99: expected a finite number, got nan"),
    (lambda d: d.update(complete="yes"), r"complete: expected true or false, got 'yes'"),
    (lambda d: d.update(threads=True), r"threads: expected null or an integer, got True"),
    (lambda d: d.update(kind="edge"),
     r"kind: expected one of 'device', 'server', 'evaluation'.*, got 'edge'"),
    (lambda d: d["energy"].update(kind="guessed"), r"energy\.kind: expected one of"),
    (lambda d: d.update(energy=None), r"energy: expected an object, got None"),
    (lambda d: d["energy"]["joules_per_image"].update(ci95=[1, 2, 3]),
     r"energy\.joules_per_image\.ci95: expected a list of 2 items, got 3"),
    (lambda d: d["baselines"][1].update(bytes_mean=None),
     r"baselines\[1\]\.bytes_mean: expected a number, got None"),
    (lambda d: d["bundle"].update(latent_shape=[24, 55]),
     r"bundle\.latent_shape: expected a list of 3 items, got 2"),
    (lambda d: d["link"]["delay_ms"].pop("p50"), r"link\.delay_ms: missing required key 'p50'"),
    (lambda d: d["runs"].update(stop="ctrl-c"), r"runs\.stop: expected one of 'runs'"),
    (lambda d: d.update(memory={"peak_rss_mb": "big"}),
     r"memory\.peak_rss_mb: expected null or a number, got 'big'"),
    (lambda d: d["conditions"].update(cores="4"), r"conditions\.cores: expected null or an "
                                                  r"integer, got '4'"),
    (lambda d: d["energy"].pop("detail"), r"energy: missing required key 'detail'"),
    (lambda d: d["energy"].pop("host_timed_on"), r"energy: missing required key 'host_timed_on'"),
    (lambda d: d["energy"].update(host_timed_on="x86"),
     r"energy\.host_timed_on: expected null unless kind is 'modeled', got 'x86'"),
    (_modeled_with_ci95,
     r"energy\.joules_per_image\.ci95: expected null for modeled energy \(a model has no "
     r"measurement precision"),
])
def test_validation_names_file_key_and_problem(edit, message):
    with pytest.raises(ResultsError, match=message):
        validate(_broken(edit), "a.json")


def test_device_needs_target_but_server_does_not():
    server = make_result(kind="server")
    assert "target" not in server and "energy" not in server
    validate(server)
    device = make_result()
    del device["target"]
    with pytest.raises(ResultsError, match="missing required key 'target'"):
        validate(device)


def test_newer_schema_version_says_to_upgrade():
    doc = make_result()
    doc["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(ResultsError, match=r"a\.json: schema_version 4 is newer .*up to 3\)"
                                           r".*upgrade sc2deploy"):
        validate(doc, "a.json")


@pytest.mark.parametrize("version", [0, "1", 1.0, None])
def test_bad_schema_version(version):
    doc = make_result()
    doc["schema_version"] = version
    with pytest.raises(ResultsError, match=r"schema_version: expected an integer >= 1"):
        validate(doc, "a.json")


def test_wrong_schema_string():
    doc = make_result()
    doc["schema"] = "polygraphy-results"
    with pytest.raises(ResultsError, match=r"a\.json: schema: expected 'sc2deploy-results', "
                                           r"got 'polygraphy-results'"):
        validate(doc, "a.json")
    del doc["schema"]
    with pytest.raises(ResultsError, match="missing required key 'schema'.*not an sc2deploy"):
        validate(doc, "a.json")


def test_not_an_object():
    with pytest.raises(ResultsError, match=r"a\.json: expected a JSON object .* got list"):
        validate([make_result()], "a.json")


def test_load_results_reads_in_order(tmp_path):
    paths = []
    for label in ("b", "a"):
        path = tmp_path / f"{label}.json"
        path.write_text(json.dumps(make_result(label)))
        paths.append(path)
    assert [d["label"] for d in load_results(paths)] == ["b", "a"]


def test_invalid_json_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"schema": "sc2deploy-results",')
    with pytest.raises(ResultsError, match=r"broken\.json: not valid JSON: .*line 1"):
        load_results([path])


def test_unreadable_and_non_object_files(tmp_path):
    with pytest.raises(ResultsError, match=r"missing\.json: cannot read the results file"):
        load_results([tmp_path / "missing.json"])
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(ResultsError, match=r"list\.json: expected a JSON object"):
        load_results([path])
    with pytest.raises(ResultsError, match="no results files given"):
        load_results([])


def test_load_names_the_file_of_an_invalid_document(tmp_path):
    doc = make_result()
    doc["latency_ms"]["total"]["p99"] = "x"
    path = tmp_path / "a.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ResultsError, match=r"a\.json: latency_ms\.total\.p99: expected a "
                                           r"number, got 'x'"):
        load_results([path])


def test_write_results_round_trip_and_atomic(tmp_path):
    doc = make_result()
    path = tmp_path / "out" / "results.json"
    assert write_results(doc, path) == path
    assert json.loads(path.read_text()) == doc
    doc2 = make_result("second")
    write_results(doc2, path)  # replaces the file
    assert load_results([path])[0]["label"] == "second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["results.json"]  # no temp files


def test_write_results_refuses_invalid_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "results.json"
    write_results(make_result("old"), path)
    bad = make_result()
    bad["schema_version"] = "1"
    with pytest.raises(ResultsError, match=r"results\.json: schema_version"):
        write_results(bad, path)
    unserializable = make_result()
    unserializable["extra"] = object()
    with pytest.raises(ResultsError, match="cannot be written as JSON"):
        write_results(unserializable, path)
    assert json.loads(path.read_text())["label"] == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_version_1_files_stay_readable(tmp_path):
    """Version 1 had no host_timed_on and stored a ci95 for modeled energy: both still read."""
    doc = make_result(energy="modeled", version=1)
    assert "host_timed_on" not in doc["energy"] and doc["energy"]["joules_per_image"]["ci95"]
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(doc))
    assert load_results([path]) == [doc]
    doc["schema_version"] = 2  # the same content is not a valid version 2 (or 3) file
    with pytest.raises(ResultsError, match="missing required key 'host_timed_on'"):
        validate(doc, "v1.json")


def test_version_2_files_stay_readable_without_samples(tmp_path):
    doc = make_result(version=2)
    server = make_result(kind="server", version=2)
    assert "samples" not in doc and "decoder" in server["latency_ms"]
    for i, d in enumerate((doc, server)):
        (tmp_path / f"v2-{i}.json").write_text(json.dumps(d))
    assert load_results(sorted(tmp_path.iterdir())) == [doc, server]
    del server["latency_ms"]["decoder"]  # version 2 servers always had a decoder stage
    with pytest.raises(ResultsError, match="latency_ms: missing required key 'decoder'"):
        validate(server, "v2.json")


def test_version_3_samples_are_bounded_and_match_the_stages():
    from sc2deploy.measure.stats import samples_entry

    times = {"head": np.arange(12_345, dtype=float) / 7, "total": np.arange(12_345) / 3}
    entry = samples_entry(times, cap=1000)
    assert entry["selection"] == "uniform" and len(entry["latency_ms"]["head"]) == 1000
    head, total = (np.asarray(entry["latency_ms"][s]) for s in ("head", "total"))
    assert np.all(np.diff(head) > 0)  # measurement order kept
    assert np.allclose(head * 7, total * 3, atol=1e-3)  # the same images in every stage
    assert samples_entry({"head": [1.23456789]})["latency_ms"]["head"] == [1.2346]
    assert samples_entry({"head": [1.0]})["selection"] == "all"
    doc = make_result()
    assert len(doc["samples"]["latency_ms"]["head"]) == doc["latency_ms"]["head"]["n"]
    for edit, message in [
            (lambda d: d["samples"]["latency_ms"]["head"].pop(),
             r"samples\.latency_ms\.head: expected min\(latency_ms\.head\.n, cap\) = 50 "
             r"samples, got 49"),
            (lambda d: d["samples"]["latency_ms"].update(decoder=[1.0]),
             r"samples\.latency_ms\.decoder: expected a stage of latency_ms \(load, "),
            (lambda d: d["samples"].update(cap=10_001),
             r"samples\.cap: expected an integer from 1 to 10000, got 10001"),
            (lambda d: d["samples"].update(cap=10),
             r"samples\.latency_ms\.load: expected at most cap = 10 samples, got 50"),
            (lambda d: d["samples"]["latency_ms"]["code"].append("x"),
             r"samples\.latency_ms\.code\[50\]: expected a number, got 'x'"),
            (lambda d: d["samples"].update(selection="first"),
             r"samples\.selection: expected one of 'all', 'uniform', got 'first'")]:
        broken = copy.deepcopy(doc)
        edit(broken)
        with pytest.raises(ResultsError, match=message):
            validate(broken, "a.json")


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o644), (0o077, 0o600)])
def test_results_files_are_0644_less_the_umask(tmp_path, umask, mode):
    path = tmp_path / f"r{umask:o}.json"
    old = os.umask(umask)
    try:
        write_results(make_result(), path)
        write_results(make_result("again"), path)  # replacing keeps the mode
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_schema_constants():
    assert (SCHEMA, SCHEMA_VERSION) == ("sc2deploy-results", 3)
    doc = copy.deepcopy(make_result())
    assert doc["schema"] == SCHEMA



# ------------------------------------------------ the adaptive ladder (issue 22)

def test_adaptive_stream_and_replay_documents_are_valid(tmp_path):
    from tests.helpers.results_factory import make_adaptive_stream, make_replay

    for doc in (make_adaptive_stream(), make_replay(), make_replay(period_s=1.0)):
        assert validate(doc, "x.json") is doc
    path = write_results(make_replay(), tmp_path / "replay.json")
    (loaded,) = load_results([path])
    assert loaded["kind"] == "replay" and loaded["adaptive"]["summary"]["images"] == 237


def _choice(d):
    return d["predictions"][2]["adaptive"]


@pytest.mark.parametrize("edit, message", [
    (lambda d: _choice(d).pop("estimate_bps"),
     r"predictions\[2\]\.adaptive: missing required key 'estimate_bps'"),
    (lambda d: _choice(d).update(point="demo-beta9"),
     r"predictions\[2\]\.adaptive\.point: expected one of the ladder's points \(demo-beta0\.1, "
     r"demo-beta1, demo-beta3\), got 'demo-beta9'"),
    (lambda d: _choice(d).update(met=True),
     r"predictions\[2\]\.adaptive\.met: expected False \(end to end 2900 ms, deadline 2500 ms\)"),
    (lambda d: _choice(d).pop("met"),
     r"predictions\[2\]\.adaptive: expected 'met' and 'measured_e2e_ms' together"),
    (lambda d: d.pop("adaptive"),
     r"predictions\[0\]\.adaptive: a choice of an adaptive stream, but the document has no "
     r"'adaptive' record"),
    (lambda d: d["adaptive"].update(mode="fastest"),
     r"adaptive\.mode: expected one of 'deadline', 'energy', got 'fastest'"),
    (lambda d: d["adaptive"].pop("overhead_bytes"),
     r"adaptive: missing required key 'overhead_bytes'"),
    (lambda d: d["adaptive"]["summary"].update(hit_rate="all"),
     r"adaptive\.summary\.hit_rate: expected null or a number, got 'all'"),
    (lambda d: d["adaptive"]["points"][0].pop("top1"),
     r"adaptive\.points\[0\]: missing required key 'top1'"),
])
def test_adaptive_stream_validation_says_what_is_wrong(edit, message):
    from tests.helpers.results_factory import make_adaptive_stream

    doc = make_adaptive_stream()
    edit(doc)
    with pytest.raises(ResultsError, match=message):
        validate(doc, "a.json")


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["trace"]["segments"].__setitem__(0, [5, 37500]),
     r"trace\.segments: expected segments \[t_start_s, bits_per_s\], the first at 0 s"),
    (lambda d: d["trace"]["segments"].__setitem__(2, [20, 37500]),
     r"trace\.segments\[2\]: expected increasing start times and rates > 0, got \[20, 37500\]"),
    (lambda d: d["trace"]["segments"].__setitem__(1, [30, 0]),
     r"trace\.segments\[1\]: expected increasing start times and rates > 0"),
    (lambda d: d["images"][4].update(point="b9000"),
     r"images\[4\]\.point: expected one of the ladder's points \(b300, b600, b1500\)"),
    (lambda d: d["images"][0].update(e2e_ms=501.0),
     r"images\[0\]\.met: expected False \(end to end 501 ms, deadline 500 ms\), got True"),
    (lambda d: d["images"].pop(),
     r"adaptive\.summary: expected images 236 and met 235 \(the images listed\), got 237 and "
     r"236"),
    (lambda d: d["fixed"][1].update(point="b700"), r"fixed\[1\]\.point: expected one of"),
    (lambda d: d["switching"][0].update(delay_images=1.5),
     r"switching\[0\]\.delay_images: expected null or an integer, got 1\.5"),
    (lambda d: d["adaptive"].pop("points"), r"adaptive: missing required key 'points'"),
    (lambda d: d.pop("trace"), r"^a\.json: missing required key 'trace'$"),
])
def test_replay_validation_says_what_is_wrong(edit, message):
    from tests.helpers.results_factory import make_replay

    doc = make_replay()
    edit(doc)
    with pytest.raises(ResultsError, match=message):
        validate(doc, "a.json")
