"""Network namespaces of the tests' own (root; iproute2)::

    hub namespace: bridge (hub address) ─┬─ veth ─ leaf namespace 1 (address 1)
                                         └─ veth ─ leaf namespace 2 (address 2) ...

``star(tag, hub, leaves)`` makes them, named after this process, yields their names and the
leaves' veths, and removes them and every process in them afterwards; it skips, saying
why, where namespaces cannot be made.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


@contextlib.contextmanager
def star(tag: str, hub_ip: str, leaf_ips):
    """A hub namespace whose bridge has ``hub_ip`` (/24) and one leaf namespace per address;
    yields (hub, [leaves], [the leaves' veths])."""
    if shutil.which("ip") is None or shutil.which("tc") is None:
        reason = "iproute2 (ip, tc) is not installed"
        print("skipped:", reason)
        pytest.skip(reason)
    pid = os.getpid()
    hub, leaves = f"{tag}{pid}h", [f"{tag}{pid}l{i}" for i in range(len(leaf_ips))]
    made = []
    try:
        for name in (hub, *leaves):
            result = ip("netns", "add", name, check=False)
            if result.returncode:
                reason = (f"cannot make a network namespace ({result.stderr.strip()}): needs "
                          "root and a kernel with network namespaces")
                print("skipped:", reason)
                pytest.skip(reason)
            made.append(name)
            ip("-n", name, "link", "set", "lo", "up")
        ip("-n", hub, "link", "add", "br0", "type", "bridge")
        ip("-n", hub, "addr", "add", f"{hub_ip}/24", "dev", "br0")
        ip("-n", hub, "link", "set", "br0", "up")
        veths = []
        for i, (leaf, addr) in enumerate(zip(leaves, leaf_ips)):
            near, far = f"h{i}", f"{tag}{pid}v{i}"[-15:]
            ip("link", "add", far, "type", "veth", "peer", "name", f"{tag}{pid}p{i}"[-15:])
            ip("link", "set", f"{tag}{pid}p{i}"[-15:], "netns", hub, "name", near)
            ip("link", "set", far, "netns", leaf)
            ip("-n", hub, "link", "set", near, "master", "br0")
            ip("-n", hub, "link", "set", near, "up")
            ip("-n", leaf, "addr", "add", f"{addr}/24", "dev", far)
            ip("-n", leaf, "link", "set", far, "up")
            veths.append(far)
        yield hub, leaves, veths
    finally:
        for name in made:
            kill_all_in(name)
            ip("netns", "del", name, check=False)


def kill_all_in(namespace: str) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [int(p) for p in ip("netns", "pids", namespace, check=False).stdout.split()]
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if pids:
            time.sleep(2)


def run_in(namespace, *args, **kwargs):
    """``args`` in ``namespace`` (Popen)."""
    return subprocess.Popen(["ip", "netns", "exec", namespace, *map(str, args)], text=True,
                            **kwargs)


def sc2deploy(namespace, *args, **kwargs):
    return run_in(namespace, sys.executable, "-m", "sc2deploy", *args, **kwargs)
