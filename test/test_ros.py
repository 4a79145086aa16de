"""rclpy on localhost DDS: the simulated arm's joint state survives a publish/subscribe
round trip and is read back by joint name."""

import os
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

from mbrl_control.arm.sim import ArmSim  # noqa: E402
from mbrl_control.nodes.messages import arrays_to_joint_state, joint_state_to_arrays  # noqa: E402


def test_dds_is_confined_to_this_machine():
    assert os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert 1 <= int(os.environ["ROS_DOMAIN_ID"]) <= 101


@pytest.fixture
def context():
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.shutdown(context=ctx)


def test_joint_state_round_trip(context):
    sim = ArmSim()
    sim.reset(np.array([0.3, -0.4, 0.9, 0.2, -1.0]), np.array([0.2, 0.0, 0.1]))
    for _ in range(3):
        sim.step(np.array([0.5, -0.2, 1.1, 0.0, -0.8]))  # moving: velocities are non-zero
    q, qd = sim.joint_positions, sim.joint_velocities
    # a driver publishes joints in its own order, with extra joints
    names = list(reversed(sim.joint_names)) + ["gripper"]
    sent = arrays_to_joint_state(names, np.append(q[::-1], 0.01), np.append(qd[::-1], 0.0))

    publisher_node = rclpy.create_node("test_joint_state_publisher", context=context)
    subscriber_node = rclpy.create_node("test_joint_state_subscriber", context=context)
    received: list[JointState] = []
    subscriber_node.create_subscription(JointState, "joint_states", received.append, 10)
    publisher = publisher_node.create_publisher(JointState, "joint_states", 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(publisher_node)
    executor.add_node(subscriber_node)
    try:
        deadline = time.monotonic() + 20.0
        while not received and time.monotonic() < deadline:
            publisher.publish(sent)
            executor.spin_once(timeout_sec=0.1)
    finally:
        executor.shutdown()
        publisher_node.destroy_node()
        subscriber_node.destroy_node()
    assert received, "no JointState arrived over localhost DDS"
    position, velocity = joint_state_to_arrays(received[0], sim.joint_names)
    np.testing.assert_array_equal(position, q)
    np.testing.assert_array_equal(velocity, qd)


def joint_state(names, position, velocity=()):
    msg = JointState()
    msg.name, msg.position, msg.velocity = list(names), list(position), list(velocity)
    return msg


@pytest.mark.parametrize(
    "msg, reason",
    [
        (joint_state(["a", "b"], [0.0, 1.0]), r"lacks joint\(s\) \['c'\]"),
        (joint_state(["a", "b", "c"], [0.0, float("nan"), 1.0]), "NaN/inf"),
        (joint_state(["a", "b", "c"], [0.0, 1.0, 2.0], [0.0, float("inf"), 0.0]), "NaN/inf"),
        (joint_state(["a", "b", "c"], [0.0, 1.0]), "3 names but 2 positions"),
        (joint_state(["a", "b", "c"], [0.0, 1.0, 2.0], [0.0]), "3 names but 1 velocities"),
        (joint_state(["a", "a", "c"], [0.0, 1.0, 2.0]), "repeats joint names"),
    ],
)
def test_bad_joint_states_are_refused_with_a_reason(msg, reason):
    with pytest.raises(ValueError, match=reason):
        joint_state_to_arrays(msg, ["a", "b", "c"])


def test_missing_velocities_read_as_zero():
    position, velocity = joint_state_to_arrays(joint_state(["c", "a", "b"], [3.0, 1.0, 2.0]), ["a", "b", "c"])
    np.testing.assert_array_equal(position, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(velocity, [0.0, 0.0, 0.0])


def test_throttled_messages_of_every_severity_share_one_logger():
    """rclpy refuses a second severity from one call site: a node's throttled info, warning
    and error messages (waiting, a refused state, a failed controller) must all get out."""
    from rclpy.logging import get_logger

    from mbrl_control.nodes.common import Throttle

    logger = get_logger("throttle_test")
    for log in (logger.info, logger.warning, logger.error, logger.info):
        Throttle(0.0)(log, "a message")
