"""Two hosts on one machine: two network namespaces made here (neither is the machine's
own), joined by a veth pair, so the only interfaces DDS sees are their loopbacks and that
link. The computer next to the arm runs the simulator, the collector and the planner; the
workstation runs the learner. Episodes and models cross by DDS over UDP alone (no shared
memory transport), each host writes only its own folder, and the arm learns."""

import csv
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("rclpy")

SUBNET = "10.211.{}.{}"


def _ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True)


@pytest.fixture
def two_hosts():
    """(arm, workstation): their namespace names and addresses, linked by a veth pair."""
    if shutil.which("ip") is None:
        pytest.skip("iproute2's `ip` is not installed: no network namespaces")
    tag, subnet = f"{os.getpid() % 100000}", random.randrange(1, 250)
    hosts = [(f"mbrl{tag}arm", SUBNET.format(subnet, 1), f"va{tag}"), (f"mbrl{tag}ws", SUBNET.format(subnet, 2), f"vw{tag}")]
    made = []
    try:
        for name, _, _ in hosts:
            result = _ip("netns", "add", name)
            if result.returncode != 0:
                pytest.skip(f"cannot make a network namespace here ({result.stderr.strip()}): needs root (CAP_SYS_ADMIN)")
            made.append(name)
        (arm, arm_ip, arm_link), (ws, ws_ip, ws_link) = hosts
        commands = [
            ("link", "add", arm_link, "netns", arm, "type", "veth", "peer", "name", ws_link, "netns", ws),
            ("-n", arm, "addr", "add", f"{arm_ip}/24", "dev", arm_link), ("-n", ws, "addr", "add", f"{ws_ip}/24", "dev", ws_link),
            *[("-n", name, "link", "set", dev, "up") for name, _, link in hosts for dev in ("lo", link)],
            # DDS discovery's multicast goes out on the link (there is no default route)
            *[("-n", name, "route", "add", "224.0.0.0/4", "dev", link) for name, _, link in hosts],
        ]
        for command in commands:
            result = _ip(*command)
            if result.returncode != 0:
                pytest.skip(f"cannot link the namespaces (ip {' '.join(command)}: {result.stderr.strip()})")
        yield hosts
    finally:
        for name in made:
            _ip("netns", "del", name)


def _host(namespace: str, peer: str, folder: Path, domain: int) -> dict[str, str]:
    """The environment of a node process on one host: DDS over UDP on its subnet, the other
    host as its static peer, logs and working files in its own folder."""
    folder.mkdir(parents=True)
    return {**os.environ, "ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET", "ROS_STATIC_PEERS": peer,
            "FASTDDS_BUILTIN_TRANSPORTS": "UDPv4", "ROS_LOG_DIR": str(folder / "log"), "HOME": str(folder)}


def test_the_arm_learns_with_its_learner_on_another_host(two_hosts, tmp_path):
    (arm, arm_ip, arm_link), (ws, ws_ip, ws_link) = two_hosts
    for name, link in ((arm, arm_link), (ws, ws_link)):  # what DDS can see there: the loopback and the link
        links = {line.split(":")[1].strip().split("@")[0] for line in _ip("-n", name, "-o", "link").stdout.splitlines()}
        assert links == {"lo", link}, links
    domain = random.randrange(1, 100)
    bringup = [sys.executable, "-m", "mbrl_control.cli", "bringup", "sim"]
    workstation = subprocess.Popen(
        ["ip", "netns", "exec", ws, *bringup, "--nodes", "dynamics_learner", "--out", str(tmp_path / "ws")],
        env=_host(ws, arm_ip, tmp_path / "ws_home", domain), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        beside_the_arm = subprocess.run(
            ["ip", "netns", "exec", arm, *bringup, "--nodes", "sim_node,data_collector,mpc_planner", "--episodes", "10",
             "--out", str(tmp_path / "arm")],
            env=_host(arm, ws_ip, tmp_path / "arm_home", domain), cwd=tmp_path, capture_output=True, text=True, timeout=400)
    finally:
        workstation.send_signal(signal.SIGINT)
        learner_log, _ = workstation.communicate(timeout=30)
    assert beside_the_arm.returncode == 0, beside_the_arm.stdout[-3000:] + beside_the_arm.stderr[-3000:]
    assert workstation.returncode == 0, learner_log[-3000:]
    with open(tmp_path / "arm" / "episodes.csv") as f:
        episodes = list(csv.DictReader(f))
    # the planner planned with the workstation's models, and the arm reached its targets
    assert any(int(e["model_transitions"] or 0) > 0 for e in episodes), (episodes, learner_log[-2000:])
    final = sorted(float(e["final_distance"]) for e in episodes[-4:])
    assert final[2] < 0.02, (final, beside_the_arm.stdout[-3000:])  # at least 3 of the last 4 within 2 cm
    # each host wrote only its own folder: the models live on the workstation alone
    assert (tmp_path / "ws" / "learner" / "model.pt").is_file()
    assert not list((tmp_path / "arm").rglob("model.pt")) and not list((tmp_path / "ws").rglob("*.mcap"))
