"""A supervisor killed outright takes its node processes with it: nothing keeps commanding
the arm once ``mbrl-control bringup`` is gone."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rosutil import wait_for

pytest.importorskip("rclpy")
pytestmark = pytest.mark.skipif(not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists(),
                                reason="needs Linux's /proc/<pid>/task/<tid>/children")


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # an exited child not yet reaped is not running


def test_bringup_killed_by_sigkill_takes_its_nodes_with_it(tmp_path):
    supervisor = subprocess.Popen([sys.executable, "-m", "mbrl_control.cli", "bringup", "sim", "--out", str(tmp_path)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(children(supervisor.pid)) >= 4, 60, "the four node processes")
        nodes = children(supervisor.pid)
        wait_for(lambda: (tmp_path / "data").exists(), 60, "the nodes at work")
    finally:
        supervisor.kill()
        supervisor.wait()
    wait_for(lambda: not any(alive(pid) for pid in nodes), 10, f"nodes {nodes} to exit after their supervisor's SIGKILL")


def test_sigint_mid_fit_stops_the_learner_at_once_and_keeps_the_last_good_model(tmp_path):
    """As launch and bringup stop it: a fit in progress (one that would run for minutes)
    is cancelled, the process exits well inside launch's 5 s before SIGTERM, and model.pt
    is still the last good model."""
    from mbrl_control.arm.env import ArmReach
    from mbrl_control.loops.mbrl import explore
    from mbrl_control.models import load_model, make_model

    env = ArmReach()
    data = explore(env, episodes=3)
    env.close()
    out = tmp_path / "learner"
    out.mkdir()
    good = make_model("mlp", 16, 5, goal_dims=3, max_epochs=5)
    good.fit(data.subset(data.episode == 0))
    good.save(out / "model.pt")
    data.save(out / "dataset.npz")  # more data than the model saw: a fit starts at once
    env_vars = {**os.environ, "ROS_DOMAIN_ID": str(os.getpid() % 100 + 1)}
    learner = subprocess.Popen(
        [sys.executable, "-m", "mbrl_control.nodes.dynamics_learner", "--ros-args", "-p", f"out_dir:={out}",
         "-p", "model.type:=ensemble", "-p", "min_transitions:=10", "-p", "fit_seconds:=0.0", "-p", "model.max_epochs:=100000",
         "-p", "model.max_steps:=10000000", "-p", "model.patience:=10000"],
        env=env_vars, stderr=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    try:
        while not any("republished" in line for line in lines):  # started; its first fit begins within 0.5 s
            line = learner.stderr.readline()
            assert line or learner.poll() is None, "".join(lines)
            lines.append(line)
        time.sleep(3.0)
        assert learner.poll() is None
        learner.send_signal(signal.SIGINT)
        _, rest = learner.communicate(timeout=10)  # launch would send SIGTERM after 5
    finally:
        if learner.poll() is None:
            learner.kill()
    assert learner.returncode == 0 and "cancelled at shutdown" in rest, rest
    assert load_model(out / "model.pt", 16, 5).dataset_size == good.dataset_size


def test_a_trainer_stopped_mid_round_stops_at_once_and_keeps_its_last_policy(tmp_path):
    """DAgger labelling hundreds of states with MPC (a minute of work) is cancelled when the
    node closes, as at Ctrl-C: close() returns well inside launch's 5 s, nothing is saved."""
    import rclpy
    from rclpy.parameter import Parameter

    from mbrl_control.arm.env import ArmReach
    from mbrl_control.loops.mbrl import explore
    from mbrl_control.models import make_model
    from mbrl_control.nodes.pg_trainer import PolicyTrainerNode

    env = ArmReach()
    data = explore(env, episodes=3)
    env.close()
    model = make_model("mlp", 16, 5, goal_dims=3, max_epochs=2)
    model.fit(data)
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        trainer = PolicyTrainerNode(context=context, parameter_overrides=[
            Parameter("method.type", value="dagger"), Parameter("out_dir", value=str(tmp_path)), Parameter("time_budget", value=0.0)])
        trainer.dataset = data
        trainer.worker.start(trainer.train_round, model)
        time.sleep(1.0)
        assert trainer.worker.busy  # labelling
        started = time.monotonic()
        trainer.close()
        assert time.monotonic() - started < 5.0 and not trainer.worker.busy
        assert not (tmp_path / "policy.pt").exists() and not (tmp_path / "labels.npz").exists()
        trainer.destroy_node()
    finally:
        rclpy.shutdown(context=context)
