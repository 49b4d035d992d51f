"""`sc2deploy serve --ray-address`: one app over a real two-node Ray cluster, each node in a
network namespace of its own (tests/helpers/netns.py), with Ray's token auth on.

    namespace a: ray start --head (1 CPU) + sc2deploy serve --replicas 2 --ray-address A:6379
    namespace b: ray start --address A:6379 (1 CPU)        devices: POSTs to both nodes' proxies

A replica reserves one CPU, so the two replicas land on the two nodes. The bundle reaches
node b with the deployment (no copy on disk there).
"""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from sc2deploy.preprocess import sample_images
from sc2deploy.serving.service import ServeOptions, Service
from sc2deploy.targets.encoding import encode_images
from tests.helpers import netns
from tests.helpers.symbols import assert_same_top1

pytest.importorskip("ray", reason="Ray Serve is not installed (pip install 'sc2deploy[serve]')")
HEAD_IP, WORKER_IP, GCS_PORT, PORT = "10.214.0.1", "10.214.0.2", 6379, 8000
RAY = Path(sys.executable).parent / "ray"
TOKEN = "cluster-test-token-0123456789"

CLIENT = r'''
import json, sys, http.client
from concurrent.futures import ThreadPoolExecutor
from sc2deploy.bundle import Bundle
from sc2deploy.preprocess import sample_images
from sc2deploy.targets.encoding import encode_images
bundle_dir, token, port, *hosts = sys.argv[1:]
bundle = Bundle.open(bundle_dir)
data = [d for _, d in encode_images(bundle, sample_images()[:8])]
def post(i):
    conn = http.client.HTTPConnection(hosts[i % len(hosts)], int(port), timeout=120)
    conn.request("POST", "/v1/infer", data[i % 8], {
        "Authorization": f"Bearer {token}", "X-Request-Id": f"c{i}",
        "X-Sc2deploy-Bundle": bundle.manifest["manifest_sha256"]})
    response = conn.getresponse()
    body = json.loads(response.read())
    top1 = body["outputs"][0]["top_k"][0]["class"] if response.status == 200 else None
    return [i, hosts[i % len(hosts)], response.status, body.get("served_by"), top1]
with ThreadPoolExecutor(8) as pool:
    print(json.dumps(list(pool.map(post, range(48)))))
'''


def ray_env(token_file: Path) -> dict:
    return dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_file),
                RAY_USAGE_STATS_ENABLED="0")


def run(namespace, *args, env, timeout=180):
    proc = netns.run_in(namespace, *args, env=env, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"{args[:3]} failed: {err[-2000:]}"
    return out


@pytest.fixture
def cluster(tmp_path):
    """(head namespace, worker namespace, Ray's environment) of a running two-node cluster."""
    if not RAY.is_file():
        pytest.skip(f"{RAY} missing (the serve extra installs Ray's command line)")
    token_file = tmp_path / "ray-token"
    token_file.write_text(secrets.token_hex(32))
    token_file.chmod(0o600)
    env = ray_env(token_file)
    temp = tempfile.mkdtemp(prefix="s2r", dir="/tmp")  # short: Ray's socket paths
    try:
        with netns.star("s2r", HEAD_IP, [WORKER_IP]) as (head, (worker,), _):
            run(head, RAY, "start", "--head", "--node-ip-address", HEAD_IP, "--port", GCS_PORT,
                "--num-cpus", 1, "--include-dashboard", "false", "--disable-usage-stats",
                "--temp-dir", temp, env=env)
            run(worker, RAY, "start", "--address", f"{HEAD_IP}:{GCS_PORT}", "--node-ip-address",
                WORKER_IP, "--num-cpus", 1, "--disable-usage-stats", env=env)
            deadline = time.monotonic() + 120
            while True:
                status = run(head, RAY, "status", "--address", f"{HEAD_IP}:{GCS_PORT}", env=env)
                if status.count("node_") >= 2:
                    break
                assert time.monotonic() < deadline, f"the worker never joined:\n{status}"
                time.sleep(2)
            yield head, worker, env
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def logits_here(bundle):
    """Logits of the first 8 sample images, decoded by a Service and classified image by image
    by tail.onnx in this process."""
    import onnxruntime as ort

    service = Service(ServeOptions(bundles=bundle.path), TOKEN)
    session = ort.InferenceSession(str(bundle.file("tail.onnx")),
                                   providers=["CPUExecutionProvider"])
    headers = {"authorization": f"Bearer {TOKEN}",
               "x-sc2deploy-bundle": bundle.manifest["manifest_sha256"]}
    try:
        latents = [service.prepare({**headers, "x-request-id": f"e{i}"}, data).latent
                   for i, (_, data) in enumerate(encode_images(bundle, sample_images()[:8]))]
    finally:
        service.close()
    return [session.run(None, {"symbols": z[None].astype(np.float32)})[0] for z in latents]


def test_one_app_serves_from_both_nodes_of_a_ray_cluster(cluster, demo_bundle, tmp_path):
    head, worker, env = cluster
    token_file = tmp_path / "serve-token"
    token_file.write_text(TOKEN)
    server = netns.sc2deploy(head, "serve", demo_bundle.path, "--ray-address",
                             f"{HEAD_IP}:{GCS_PORT}", "--replicas", 2, "--host", "0.0.0.0",
                             "--port", PORT, "--token-file", token_file, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready = server.stdout.readline()
        assert ready.startswith("serving "), f"serve did not start: {ready!r} " \
            f"{server.stderr.read()[-2000:] if server.poll() is not None else ''}"
        client = netns.run_in(worker, sys.executable, "-c", CLIENT, demo_bundle.path, TOKEN,
                              PORT, HEAD_IP, WORKER_IP, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
        out, err = client.communicate(timeout=300)
        assert client.returncode == 0, err[-2000:]
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
    answers = json.loads(out)
    expected = logits_here(demo_bundle)
    assert {status for _, _, status, _, _ in answers} == {200}
    assert {host for _, host, _, _, _ in answers} == {HEAD_IP, WORKER_IP}  # both proxies
    nodes = {served["node"] for _, _, _, served, _ in answers}
    replicas = {served["replica"] for _, _, _, served, _ in answers}
    print(f"48 requests: {len(nodes)} nodes, {len(replicas)} replicas")
    assert len(nodes) == 2 and len(replicas) == 2
    # the replicas may run a batch at once: the same classes, bar near ties
    classes = expected[0].shape[1]
    assert_same_top1([expected[i % 8] for i in range(48)],
                     [np.eye(classes)[top1] for _, _, _, _, top1 in answers])
