"""The adaptive stream (issue 22): three demo-ladder points served by one real Service behind
the standard library's HTTP server, whose replies wait bytes x 8 / rate (a link whose rate the
test changes per image: fast, slow, fast); the adaptive client against each fixed point on the
same images and rates. The same over namespaces and tc: tests/serving/test_adaptive_link.py."""

import json
import shutil
import threading
import time

import pytest

from tests.helpers.service_front import ServiceFront

from sc2deploy.cli import main
from sc2deploy.errors import UsageError
from sc2deploy.stream.adaptive import LadderOptions, stream_ladder
from sc2deploy.stream.client import StreamOptions
from sc2deploy.preprocess import sample_images
from sc2deploy.results.schema import validate

TOKEN = "adaptive-test-token-0123456789"
FAST, SLOW = 40000.0, 3000.0  # bit/s: at SLOW the ~2 kB point takes ~5.5 s, ~0.5 kB ~1.4 s
DEADLINE_MS = 2500.0  # room for a busy CPU's encode (the tests run beside other jobs)
SCHEDULE = [FAST] * 5 + [SLOW] * 5 + [FAST] * 7  # the rate each image (in send order) gets


class ShapedFront(ServiceFront):
    """A real Service behind http.server (tests/helpers/service_front.py); each new request's reply
    waits bytes x 8 / rate (the request's bytes: body, HTTP head and 4 packet headers, as a
    shaped link carries them), the rate from ``schedule`` by the order in which request ids
    first arrive."""

    protocol_version = "HTTP/1.1"

    def __init__(self, bundles, schedule):
        self.schedule, self.ids, self.lock = schedule, [], threading.Lock()
        super().__init__(bundles, TOKEN)

    def arrived(self, handler, body):
        head = len(handler.requestline) + 2 + sum(len(k) + len(v) + 4 for k, v in
                                                  handler.headers.items()) + 2
        on_wire = len(body) + head + 4 * 66  # and TCP/IP headers, ACKs: as the device
        time.sleep(on_wire * 8 / self.rate(handler.headers["X-Request-Id"]))

    def rate(self, request_id: str) -> float:
        with self.lock:
            if request_id not in self.ids:
                self.ids.append(request_id)
            k = self.ids.index(request_id)
        return self.schedule[min(k, len(self.schedule) - 1)]


@pytest.fixture(scope="module")
def evaluations(ladder_evaluations):
    return ladder_evaluations


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    for path in sample_images()[:len(SCHEDULE)]:
        shutil.copy(path, folder / path.name)
    return folder


def run(bundles, evaluations, images, tmp_path, schedule=SCHEDULE, link=None, **ladder):
    front = ShapedFront(bundles, schedule)
    try:
        options = StreamOptions(bundle=bundles[0].path, server=front.url, token=TOKEN,
                                queue=tmp_path / f"q{len(bundles)}-{bundles[0].path.name}.json",
                                images=images, link=link, progress=False)
        ladder.setdefault("deadline_ms", DEADLINE_MS)
        ladder.setdefault("prior_kbps", FAST / 1e3)
        return validate(stream_ladder(options, LadderOptions(
            tuple(b.path for b in bundles), tuple(evaluations), **ladder)))
    finally:
        front.close()


def test_the_adaptive_stream_follows_the_link_and_beats_every_fixed_point(
        ladder_bundles, evaluations, images, tmp_path):
    doc = run(ladder_bundles, evaluations, images, tmp_path)
    assert doc["complete"] and doc["answered"] == len(SCHEDULE) and doc["duplicates"] == 0
    rows = [p["adaptive"] for p in doc["predictions"]]
    chosen = [r["point"] for r in rows]
    for r in rows:
        print(f"{r['point']:<13} estimate {r['estimate_bps'] / 1e3:6.1f} kbit/s, predicted "
              f"{r['predicted_e2e_ms']:6.0f} ms, measured {r['measured_e2e_ms']:6.0f} ms, "
              f"{r['reason']}")
    summary = doc["adaptive"]["summary"]
    assert summary["images"] == len(SCHEDULE) and summary["met"] == sum(r["met"] for r in rows)
    points = {p["name"]: p for p in doc["adaptive"]["points"]}
    print({name: (p["top1"], round(p["reference_bytes"])) for name, p in points.items()})
    top = max(points.values(), key=lambda p: (p["top1"], -p["reference_bytes"]))["name"]
    assert top == "demo-beta0.1"
    # fast: the most accurate; after the drop one image is late, then fewer bytes; after the
    # rise, two fast answers confirm it and the most accurate again
    assert chosen[:5] == [top] * 5
    assert top not in chosen[6:10] and chosen[-4:] == [top] * 4
    assert rows[6]["estimate_bps"] < 2 * SLOW < FAST / 2 < rows[-1]["estimate_bps"]
    assert summary["hit_rate"] >= 0.8  # the image sent as the rate dropped is late
    steady = sorted(r["measured_e2e_ms"] / r["predicted_e2e_ms"] for r in rows[-4:])
    assert 0.5 < steady[1] and steady[2] < 2, steady  # the prediction, once settled
    assert points["demo-beta0.1"]["reference_bytes"] > points["demo-beta1"]["reference_bytes"] \
        > points["demo-beta3"]["reference_bytes"]
    print(f"adaptive: {summary}")
    for bundle in ladder_bundles:  # each point alone on the same rates and images
        fixed = run([bundle], evaluations, images, tmp_path)["adaptive"]["summary"]
        print(f"fixed {bundle.path.name}: {fixed}")
        assert fixed["hit_rate"] <= 0.8 or fixed["mean_top1"] < summary["mean_top1"], fixed


def test_energy_mode_takes_the_least_energy_above_the_floor(ladder_bundles, evaluations, images,
                                                            tmp_path):
    doc = run(ladder_bundles, evaluations, images, tmp_path, schedule=[FAST],
              link="lora-ideal-37.5k", min_top1=90.0, prior_kbps=None, deadline_ms=5000.0)
    points = doc["adaptive"]["points"]
    eligible = [p for p in points if p["top1"] >= 90.0]
    least = min(eligible, key=lambda p: p["reference_bytes"])  # radio energy: TX x airtime
    rows = [p["adaptive"] for p in doc["predictions"]]
    assert doc["adaptive"]["mode"] == "energy" and doc["complete"]
    assert doc["adaptive"]["prior_bps"] == pytest.approx(37500)  # the link model's rate
    assert {r["point"] for r in rows} == {least["name"]}
    assert all(r["predicted_j"] > 0 and "least energy" in r["reason"] for r in rows)


def test_ladder_options_are_checked(ladder_bundles, split_bundle, evaluations, images, tmp_path):
    with pytest.raises(UsageError, match="--deadline-ms must be a positive number"):
        LadderOptions((ladder_bundles[0].path,), (), 0)
    with pytest.raises(UsageError, match="does not belong to the family"):
        run([ladder_bundles[0], split_bundle], evaluations, images, tmp_path)
    with pytest.raises(UsageError, match="no evaluation of bundle .*: run `sc2deploy evaluate"):
        run(ladder_bundles, evaluations[:2], images, tmp_path)
    with pytest.raises(UsageError, match="--prior-kbps K, or --link"):
        run(ladder_bundles, evaluations, images, tmp_path, prior_kbps=None)


def test_the_cli_streams_a_ladder(ladder_bundles, evaluations, images, tmp_path, capsys,
                                  monkeypatch):
    monkeypatch.setenv("SC2DEPLOY_TOKEN", TOKEN)
    front = ShapedFront(ladder_bundles, [FAST])
    out = tmp_path / "adaptive.json"
    try:
        code = main(["stream", "--ladder", *[str(b.path) for b in ladder_bundles],
                     "--deadline-ms", "5000", "--evaluation", *map(str, evaluations),
                     "--link", "lora-ideal-37.5k", "--server", front.url, "--images", str(images),
                     "-o", str(out)])
    finally:
        front.close()
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    assert f"adaptive (deadline): deadline 5000 ms met for {len(SCHEDULE)}/{len(SCHEDULE)} " \
           "images; points: demo-beta0.1 x" in stdout
    doc = validate(json.loads(out.read_text()))
    assert doc["adaptive"]["prior_bps"] == pytest.approx(37500)
    assert main(["stream", str(ladder_bundles[0].path), "--deadline-ms", "10", "--server",
                 front.url, "-o", str(out)]) == 2
    assert "--deadline-ms: for an adaptive stream; give --ladder too" in capsys.readouterr().err
    assert main(["stream", "--ladder", str(ladder_bundles[0].path), "--server", front.url,
                 "-o", str(out)]) == 2
    assert "--ladder needs --deadline-ms and --evaluation" in capsys.readouterr().err
