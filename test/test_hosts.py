"""Two hosts on one machine: two network namespaces made here (neither is the machine's
own), joined by a veth pair, so the only interfaces DDS sees are their loopbacks and that
link. The computer next to the arm runs the simulator, the collector and the planner; the
workstation runs the learner. Episodes and models cross by DDS over UDP alone (no shared
memory transport), each host writes only its own folder, and the arm learns."""

import csv
import random
import signal
import subprocess
import sys

import pytest

pytest.importorskip("rclpy")
from rosutil import NamespacesUnavailable, TwoHosts  # noqa: E402


@pytest.fixture
def two_hosts():
    try:
        with TwoHosts() as hosts:
            yield hosts
    except NamespacesUnavailable as err:
        pytest.skip(str(err))


def test_the_arm_learns_with_its_learner_on_another_host(two_hosts, tmp_path):
    arm, ws = two_hosts
    for host in (arm, ws):  # what DDS can see there: the loopback and the link
        assert host.links() == {"lo", host.link}, host.links()
    domain = random.randrange(1, 100)
    bringup = [sys.executable, "-m", "mbrl_control.cli", "bringup", "sim"]
    workstation = subprocess.Popen(
        ws.command(*bringup, "--nodes", "dynamics_learner", "--out", str(tmp_path / "ws")),
        env=ws.env(arm, tmp_path / "ws_home", domain), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        beside_the_arm = subprocess.run(
            arm.command(*bringup, "--nodes", "sim_node,data_collector,mpc_planner", "--episodes", "10", "--out", str(tmp_path / "arm")),
            env=arm.env(ws, tmp_path / "arm_home", domain), cwd=tmp_path, capture_output=True, text=True, timeout=400)
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
