"""Fault injection over real DDS on localhost: bad messages, silence, bursts, the e-stop,
bad parameters on every node, a full disk, and SIGKILL of the data collector and of a
checkpoint write. Nothing crashes, nothing bad reaches the arm, a dataset or a model."""

import errno
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from geometry_msgs.msg import PointStamped  # noqa: E402
from rclpy.parameter import Parameter, parameter_value_to_python  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402
from rcl_interfaces.msg import ParameterType  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool, Float64MultiArray  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from mbrl_control.arm.interface import ArmInterface  # noqa: E402
from mbrl_control.arm.reach import ReachConfig  # noqa: E402
from mbrl_control.arm.safety import HELD_STALE, STOPPED  # noqa: E402
from mbrl_control.arm.sim import SimConfig  # noqa: E402
from mbrl_control.data.rosbag import bag_paths, read_transitions  # noqa: E402
from mbrl_control.data.transitions import TransitionDataset  # noqa: E402
from mbrl_control.nodes.bringup import RunningGraph  # noqa: E402
from mbrl_control.nodes.graph import Graph  # noqa: E402
from rosutil import FakeArm, wait_for  # noqa: E402

ARM = ArmInterface.from_configs(SimConfig(), ReachConfig())
NAMES = list(ARM.joint_names)


def state(names, position, velocity=None, stamp_ns=None) -> JointState:
    msg = JointState()
    msg.name = list(names)
    msg.position = [float(x) for x in position]
    msg.velocity = [float(x) for x in (velocity if velocity is not None else [0.0] * len(position))]
    if stamp_ns is not None:
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 10**9)
    return msg


def call(node, client, timeout: float = 10.0):
    assert client.wait_for_service(timeout_sec=timeout)
    future = client.call_async(Trigger.Request())
    wait_for(future.done, timeout, f"{client.srv_name}")
    return future.result()


def bad_joint_states(newest_stamp_ns: int) -> dict[str, JointState]:
    """One message of each kind a driver (or anyone) might send wrong."""
    n = len(NAMES)
    return {
        "NaN position": state(NAMES, [np.nan] + [0.0] * (n - 1)),
        "inf velocity": state(NAMES, [0.0] * n, [np.inf] + [0.0] * (n - 1)),
        "fewer positions than names": state(NAMES, [0.0] * (n - 1)),
        "more velocities than names": state(NAMES, [0.0] * n, [0.0] * (n + 2)),
        "a joint missing": state(NAMES[1:], [0.0] * (n - 1)),
        "unknown joints only": state(["j1", "j2", "j3"], [0.0] * 3),
        "a repeated joint": state(NAMES + NAMES[:1], [0.0] * (n + 1)),
        "empty": JointState(),
        "stamp going backwards": state(NAMES, [0.0] * n, stamp_ns=newest_stamp_ns - 10**9),
    }


def test_the_planner_refuses_bad_input_holds_on_silence_and_latches_the_estop():
    """Each kind of bad joint state and target is refused with a reason; silence and the
    e-stop hold the arm; a burst is survived; commands stay finite and within limits."""
    graph = Graph(("mpc_planner",), "sim.yaml", False)
    with RunningGraph(graph) as running:
        node = rclpy.create_node("test_faults", context=running.context)
        arm = FakeArm(node)
        stamps: list[int] = []
        node.create_subscription(JointState, "joint_states", lambda m: stamps.append(
            m.header.stamp.sec * 10**9 + m.header.stamp.nanosec), 10)
        states = node.create_publisher(JointState, "joint_states", 10)
        targets = node.create_publisher(PointStamped, "mbrl/target", 10)
        estop = node.create_publisher(Bool, "mbrl/estop", 10)
        estop_service = node.create_client(Trigger, "/mpc_planner/estop")
        reset_service = node.create_client(Trigger, "/mpc_planner/reset_estop")
        running.spin(node)
        planner = running.nodes["mpc_planner"]
        loop = planner.loop
        wait_for(lambda: len(arm.commands) >= 5 and stamps, 30, "commands while exploring")

        refused = Counter()
        for kind, msg in bad_joint_states(stamps[-1]).items():
            before = loop.bad_state.count
            states.publish(msg)
            wait_for(lambda: loop.bad_state.count > before, 5, f"the planner to refuse a joint state ({kind})")
            refused[kind] += 1
        for kind, point in {"NaN target": (np.nan, 0.1, 0.1), "inf target": (0.1, -np.inf, 0.1)}.items():
            before = loop.bad_target.count
            msg = PointStamped()
            msg.point.x, msg.point.y, msg.point.z = point
            targets.publish(msg)
            wait_for(lambda: loop.bad_target.count > before, 5, f"the planner to refuse a {kind}")
            refused[kind] += 1
        assert len(refused) == 11

        # a burst: 2000 states as fast as they go; the planner keeps commanding
        for _ in range(2000):
            states.publish(state(NAMES, [0.0] * len(NAMES)))
        seen = len(arm.commands)
        wait_for(lambda: len(arm.commands) >= seen + 10, 10, "commands after a burst")

        # silence: no joint state for longer than state_timeout → hold the last measured position
        arm.paused = True
        wait_for(lambda: loop.safety.holding == HELD_STALE, 5, "the watchdog")
        held_from = len(arm.commands)
        time.sleep(0.5)
        held = np.array(arm.commands[held_from:])
        assert len(held) >= 5 and np.all(held == arm.q)  # the fake arm sits at q
        arm.paused = False
        wait_for(lambda: loop.safety.holding is None, 5, "commanding again after the silence")

        # e-stop by topic: latched; false does not clear it; only the reset service does
        estop.publish(Bool(data=True))
        wait_for(lambda: loop.safety.stop_reason is not None, 5, "the e-stop")
        estop.publish(Bool(data=False))
        stopped_from = len(arm.commands)
        time.sleep(0.5)
        assert loop.safety.stop_reason is not None and loop.safety.holding == STOPPED
        stopped = np.array(arm.commands[stopped_from:])
        assert len(stopped) >= 5 and np.all(stopped == stopped[0])
        assert "cleared" in call(node, reset_service).message
        wait_for(lambda: loop.safety.holding is None, 5, "commanding after the reset")
        # e-stop by service
        assert call(node, estop_service).success and loop.safety.stop_reason == "~/estop service"
        call(node, reset_service)
        seen = len(arm.commands)
        wait_for(lambda: len(arm.commands) >= seen + 5, 10, "commands after the second reset")

        assert not running.errors, running.errors
        counts = dict(loop.safety.interventions)
        node.destroy_node()
    commands = np.array(arm.commands)
    assert np.all(np.isfinite(commands))
    assert np.all(commands >= ARM.low) and np.all(commands <= ARM.high)
    assert counts[HELD_STALE] >= 5 and counts[STOPPED] >= 5


def test_bad_commands_are_refused_by_the_simulator_and_never_reach_the_dataset(tmp_path):
    """Commands of the wrong length, NaN/inf or empty, among good ones: the simulated arm
    and the data collector refuse each kind with a reason; the dataset stays finite."""
    out = tmp_path / "data"
    overrides = {"data_collector": {"out_dir": str(out), "flush_period": 0.2}, "sim_node": {"episode_length": 40}}
    with RunningGraph(Graph(("sim_node", "data_collector"), "sim.yaml", False), overrides) as running:
        node = rclpy.create_node("test_commands", context=running.context)
        commands = node.create_publisher(Float64MultiArray, "arm_controller/commands", 10)
        running.spin(node)
        sim, collector = running.nodes["sim_node"], running.nodes["data_collector"]
        n = len(NAMES)
        bad = {"NaN": [np.nan] * n, "inf": [0.0] * (n - 1) + [np.inf], "too short": [0.0] * (n - 1),
               "too long": [0.0] * (n + 1), "empty": []}
        good = sim.arm.to_controller(sim.sim.joint_positions)
        for kind, data in bad.items():
            before = (sim.bad_command.count, collector.bad_command.count)
            for _ in range(3):
                commands.publish(Float64MultiArray(data=[float(x) for x in good]))
                time.sleep(0.06)
            commands.publish(Float64MultiArray(data=[float(x) for x in data]))
            wait_for(lambda: sim.bad_command.count > before[0] and collector.bad_command.count > before[1], 5,
                     f"the simulator and the collector to refuse a command ({kind})")
        wait_for(lambda: (out / "dataset.npz").exists(), 10, "the collector's save")
        assert np.all(np.isfinite(sim.sim.joint_positions))
        assert not running.errors, running.errors
        node.destroy_node()
    dataset = TransitionDataset.load(out / "dataset.npz")
    assert len(dataset) > 0 and np.all(np.isfinite(dataset.obs)) and np.all(np.abs(dataset.act) <= 1.0)


def bad_values(descriptor, value) -> list[tuple[str, object]]:
    """Values ``(kind, value)`` a parameter with this descriptor and current value must refuse."""
    kinds = {ParameterType.PARAMETER_BOOL: [("wrong type", 1.5), ("wrong type", "yes")],
             ParameterType.PARAMETER_INTEGER: [("wrong type", "3"), ("wrong type", 2.5)],
             ParameterType.PARAMETER_DOUBLE: [("wrong type", "0.5"), ("wrong type", True)],
             ParameterType.PARAMETER_STRING: [("wrong type", 3), ("wrong type", ["a"])],
             ParameterType.PARAMETER_STRING_ARRAY: [("wrong type", "a"), ("wrong type", 1.0)]}[descriptor.type]
    if descriptor.read_only:  # the same type, a different value
        other = {bool: lambda v: not v, int: lambda v: v + 1, float: lambda v: v + 0.5,
                 str: lambda v: v + "_changed", list: lambda v: list(v) + ["x"]}[type(value)](value)
        kinds.append(("read-only", other))
    for bound in descriptor.integer_range:
        if bound.from_value > -(2**63 - 1):
            kinds.append(("below range", bound.from_value - 1))
        if bound.to_value < 2**63 - 1:
            kinds.append(("above range", bound.to_value + 1))
    for bound in descriptor.floating_point_range:
        kinds += [("NaN", float("nan")), ("inf", float("inf"))]
        if bound.from_value > -1e308:
            kinds.append(("below range", bound.from_value - 1.0))
        if bound.to_value < 1e308:
            kinds.append(("above range", bound.to_value + 1.0))
    if descriptor.additional_constraints.startswith("> "):
        kinds.append(("at an exclusive bound", type(value)(float(descriptor.additional_constraints[2:]))))
    if "One of:" in descriptor.description:
        kinds.append(("not a choice", "no_such_choice"))
    return kinds


def inconsistent(node: str, values: dict) -> list[tuple[str, object]]:
    """Values in range alone that break a cross-field rule with the current settings."""
    if node == "mpc_planner":
        return [("optimizer.elites", values["optimizer.population"] + 1)]  # more elites than the population
    return []


def test_every_parameter_of_every_node_refuses_bad_values_with_a_reason(tmp_path):
    nodes = ("sim_node", "data_collector", "dynamics_learner", "mpc_planner", "pg_trainer", "policy_controller")
    overrides = {"data_collector": {"out_dir": str(tmp_path / "data")},
                 "dynamics_learner": {"out_dir": str(tmp_path / "learner")}, "pg_trainer": {"out_dir": str(tmp_path / "trainer")}}
    tried: Counter[str] = Counter()
    accepted: list[str] = []
    with RunningGraph(Graph(nodes, "sim.yaml", False), overrides) as running:
        node = rclpy.create_node("test_params", context=running.context)
        running.spin(node)
        for name in nodes:
            client = AsyncParameterClient(node, name)
            assert client.wait_for_services(timeout_sec=10.0)
            future = client.list_parameters()
            wait_for(future.done, 10, "list_parameters")
            names = list(future.result().result.names)
            future = client.describe_parameters(names)
            wait_for(future.done, 10, "describe_parameters")
            descriptors = future.result().descriptors
            future = client.get_parameters(names)
            wait_for(future.done, 10, "get_parameters")
            values = [parameter_value_to_python(v) for v in future.result().values]
            attempts = [(n, kind, bad) for n, d, v in zip(names, descriptors, values) for kind, bad in bad_values(d, v)]
            attempts += [(n, "inconsistent", bad) for n, bad in inconsistent(name, dict(zip(names, values)))]
            future = client.set_parameters([Parameter(n, value=bad) for n, _, bad in attempts])
            wait_for(future.done, 30, "set_parameters")
            for (parameter, kind, bad), result in zip(attempts, future.result().results):
                tried[kind] += 1
                if result.successful or not result.reason:
                    accepted.append(f"{name}.{parameter} = {bad!r} ({kind}): {result.reason!r}")
            future = client.get_parameters(names)  # nothing changed
            wait_for(future.done, 10, "get_parameters")
            assert [parameter_value_to_python(v) for v in future.result().values] == values
        assert not running.errors, running.errors
        node.destroy_node()
    assert not accepted, accepted
    print(f"bad parameter values tried: {sum(tried.values())} {dict(tried)}")
    assert sum(tried.values()) > 150 and tried["read-only"] > 10 and tried["inconsistent"] == 1, tried


def test_a_full_disk_is_logged_and_the_collector_keeps_its_data(tmp_path, monkeypatch):
    """Every save fails (ENOSPC) for a while: the node keeps running and keeps every
    transition in memory; when the disk has room again the next flush saves them all."""
    out = tmp_path / "data"
    overrides = {"data_collector": {"out_dir": str(out), "flush_period": 0.2, "record_bag": False}}
    full = {"on": True}
    real_save = TransitionDataset.save

    def save(self, path):
        if full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_save(self, path)

    monkeypatch.setattr(TransitionDataset, "save", save)
    with RunningGraph(Graph(("data_collector", "mpc_planner"), "sim.yaml", False), overrides) as running:
        node = rclpy.create_node("test_disk", context=running.context)
        FakeArm(node)
        running.spin(node)
        collector = running.nodes["data_collector"]
        wait_for(lambda: collector.write_failed.count >= 3, 30, "failed saves")
        assert not (out / "dataset.npz").exists() and len(collector.recorder.dataset) > 0
        full["on"] = False
        wait_for(lambda: (out / "dataset.npz").exists(), 10, "a save once the disk has room")
        kept = len(collector.recorder.dataset)
        assert not running.errors, running.errors
        node.destroy_node()
    assert len(TransitionDataset.load(out / "dataset.npz")) >= kept


def test_sigkill_of_the_collector_loses_at_most_a_second_and_a_restart_resumes(tmp_path):
    """sim + planner (exploring) in this process, the collector as a child process that is
    SIGKILLed while recording: its dataset and bags hold everything up to at most one
    second before the kill, and a restarted collector appends to them."""
    out = tmp_path / "data"
    command = [sys.executable, "-m", "mbrl_control.nodes.data_collector", "--ros-args", "-p", "use_sim_time:=true",
               "-p", f"out_dir:={out}", "-p", "flush_period:=1.0"]
    overrides = {"sim_node": {"episode_length": 60, "seed": 3}}
    with RunningGraph(Graph(("sim_node", "mpc_planner"), "sim.yaml", True), overrides) as running:
        node = rclpy.create_node("test_kill", context=running.context)
        clock = {"now": 0.0}
        node.create_subscription(Clock, "/clock", lambda m: clock.update(now=m.clock.sec + m.clock.nanosec * 1e-9), 10)
        running.spin(node)
        collector = subprocess.Popen(command)
        try:
            wait_for(lambda: (out / "dataset.npz").exists(), 60, "the collector's first save")
            time.sleep(4.3)  # past a flush, into the next second
            killed_at = clock["now"]
            collector.send_signal(signal.SIGKILL)
            collector.wait(timeout=10)
        finally:
            if collector.poll() is None:
                collector.kill()
        dataset = TransitionDataset.load(out / "dataset.npz")
        lost = killed_at - float(dataset.time.max())
        from_bags, _ = read_transitions(out / "bags", ARM.kinematics, ARM.targets(), ARM.joint_names)
        lost_in_bags = killed_at - float(from_bags.time.max())
        unfinished = [p for p in (out / "bags").iterdir() if not (p / "metadata.yaml").exists()]

        restarted = subprocess.Popen(command)
        try:
            wait_for(lambda: len(TransitionDataset.load(out / "dataset.npz")) > len(dataset) + 20, 60,
                     "the restarted collector to append")
        finally:
            restarted.send_signal(signal.SIGINT)
            restarted.wait(timeout=30)
        assert not running.errors, running.errors
        node.destroy_node()
    print(f"SIGKILL at {killed_at:.2f} s: lost {lost:.2f} s from the dataset, {lost_in_bags:.2f} s from the bags; "
          f"{len(unfinished)} unfinished bag segment(s)")
    assert restarted.returncode == 0
    assert 0.0 <= lost <= 1.0 + 0.1, f"{lost:.2f} s of transitions lost from the dataset"  # + one control tick and change
    assert lost_in_bags <= 1.0 + 0.1, f"{lost_in_bags:.2f} s of transitions lost from the bags"
    assert len(unfinished) <= 1  # the segment the kill interrupted, skipped by readers
    after = TransitionDataset.load(out / "dataset.npz")
    np.testing.assert_array_equal(after.obs[:len(dataset)], dataset.obs)  # resumed, nothing rewritten
    assert after.episode.max() > dataset.episode.max()
    assert len(bag_paths(out / "bags")) >= 5


KILL_MID_WRITE = """
import os, signal, sys
from mbrl_control.checkpoint import atomic_write

def write(tmp):
    with open(tmp, "wb") as f:
        f.write(b"half a checkpoint")
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)

atomic_write(sys.argv[1], write)
"""


def test_sigkill_in_the_middle_of_a_checkpoint_write_leaves_the_previous_one_loadable(tmp_path):
    from mbrl_control.models import load_model, make_model
    from mbrl_control.loops.mbrl import explore
    from mbrl_control.arm.env import ArmReach

    env = ArmReach()
    model = make_model("mlp", ARM.obs_dim, ARM.n, goal_dims=3, max_epochs=2)
    model.fit(explore(env, episodes=1))
    env.close()
    path = model.save(tmp_path / "model.pt")
    before = path.read_bytes()
    child = subprocess.run([sys.executable, "-c", KILL_MID_WRITE, str(path)], cwd=Path(__file__).parent.parent)
    assert child.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    assert load_model(path, ARM.obs_dim, ARM.n).dataset_size == model.dataset_size
