"""servo_driver over real DDS against the emulated bus (emulated_arm): the real-arm path
of an SO-101, no hardware."""

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool, Float64MultiArray  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from mbrl_control import cli  # noqa: E402
from mbrl_control.arm.description import load_description  # noqa: E402
from mbrl_control.feetech.calibration import calibration_for  # noqa: E402
from mbrl_control.nodes.bringup import RunningGraph  # noqa: E402
from mbrl_control.nodes.graph import Graph  # noqa: E402
from mbrl_control.resources import default_urdf  # noqa: E402
from rosutil import wait_for  # noqa: E402

ARM = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll"]


def call(node, client, timeout=10.0):
    assert client.wait_for_service(timeout_sec=timeout)
    future = client.call_async(Trigger.Request())
    wait_for(future.done, timeout, "the service")
    return future.result()


def test_the_driver_publishes_states_executes_commands_and_latches_the_estop(tmp_path):
    calibration = calibration_for(load_description(default_urdf())).save(tmp_path / "calibration.json")
    overrides = {"*": {"port": str(tmp_path / "bus"), "calibration": str(calibration)}}
    with RunningGraph(Graph(("emulated_arm", "servo_driver"), "emulated.yaml", False), overrides) as running:
        node = rclpy.create_node("test_driver", context=running.context)
        states: list[JointState] = []
        node.create_subscription(JointState, "joint_states", states.append, 10)
        commands = node.create_publisher(Float64MultiArray, "arm_controller/commands", 10)
        estop = node.create_publisher(Bool, "mbrl/estop", 10)
        reset = node.create_client(Trigger, "servo_driver/reset_estop")
        running.spin(node)
        wait_for(lambda: len(states) >= 10, 20, "joint states")
        assert states[-1].name == ARM and len(states[-1].position) == len(states[-1].velocity) == len(states[-1].effort) == 5

        def command(values):
            commands.publish(Float64MultiArray(data=[float(v) for v in values]))

        goal = np.array([0.4, 0.3, -0.3, 0.2, 0.5])

        def at(target):
            return np.allclose(states[-1].position, target, atol=0.05)

        wait_for(lambda: (command(goal), at(goal))[1], 20, "the arm at the commanded pose")
        command([0.0] * 4)  # refused: the wrong size; the arm stays
        command([float("nan")] * 5)
        estop.publish(Bool(data=True))
        wait_for(lambda: running.nodes["servo_driver"].estopped, 10, "the e-stop")
        for _ in range(20):
            command(np.zeros(5))
        emulated = running.nodes["emulated_arm"].bus
        wait_for(lambda: len(states) >= 100, 20, "more joint states")
        assert np.allclose([emulated.joint_positions()[n] for n in ARM], goal, atol=0.05), "moved during the e-stop"
        assert "e-stop cleared" in call(node, reset).message
        wait_for(lambda: (command(np.zeros(5)), at(np.zeros(5)))[1], 20, "the arm back at zero")
        assert not running.errors, running.errors
        node.destroy_node()


def test_bringup_emulated_learns_to_reach_through_the_driver(tmp_path, capsys):
    """The whole real-arm graph (driver, collector, learner, planner) against the emulated
    bus, from random motions: the arm gets closer to its targets episode by episode."""
    assert cli.main(["bringup", "emulated", "--episodes", "9", "--model", "gp", "--out", str(tmp_path),
                     "--set", "dynamics_learner.min_transitions=40",
                     "--set", "emulated_arm.seed=3"]) == 0
    rows = (tmp_path / "episodes.csv").read_text().splitlines()[1:]
    start = np.array([float(r.split(",")[1]) for r in rows])
    final = np.array([float(r.split(",")[2]) for r in rows])
    print(capsys.readouterr().out)
    assert len(final) == 9 and np.median(final[-4:]) < 0.4 * np.mean(start), (final, start)
