"""The launch files run under ROS 2's own launch, with launch_pytest: each starts its nodes,
they publish and take a parameter change, and a Ctrl-C (launch's SIGINT) ends every
process cleanly. description.launch.py and record.launch.py run stand-ins of what is not
Python (robot_state_publisher, `ros2 bag record`) that keep those programs' interfaces. Skips, naming the missing module, where launch_pytest or the package's
install (``colcon build``: the nodes' executables in the ament index) is absent."""

import os
import sys
from pathlib import Path

import pytest

try:
    import launch_pytest
    import launch_pytest.actions  # noqa: F401
except ImportError as err:  # not installed, or one of its own dependencies missing: say which
    pytest.skip(f"launch_pytest cannot be imported: {err.name or err} is missing ({err})", allow_module_level=True)
import inspect  # noqa: E402

import launch_pytest.plugin  # noqa: E402

if not hasattr(launch_pytest.fixture(lambda: None), "_pytestfixturefunction") \
        and "._pytestfixturefunction" in inspect.getsource(launch_pytest.plugin):
    pytest.skip(f"this launch_pytest predates pytest {pytest.__version__}'s fixture objects and cannot collect "
                "(ros2/launch#947, fixed upstream): update ros-$ROS_DISTRO-launch-pytest", allow_module_level=True)
from ament_index_python.packages import PackageNotFoundError, get_package_prefix  # noqa: E402
from launch import LaunchDescription  # noqa: E402
from launch.actions import IncludeLaunchDescription, RegisterEventHandler  # noqa: E402
from launch.event_handlers import OnProcessExit  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402

try:
    get_package_prefix("mbrl_control")
except PackageNotFoundError:
    pytest.skip("mbrl_control is not installed in the ament index (colcon build, then source install/setup.bash)",
                allow_module_level=True)

import rclpy  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rcl_interfaces.msg import Log  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile  # noqa: E402
from std_msgs.msg import Float64MultiArray, UInt8MultiArray  # noqa: E402

from rosutil import stand_in_packages, stand_in_ros2, wait_for  # noqa: E402
from mbrl_control.nodes.graph import RECORD_TOPICS  # noqa: E402
from mbrl_control.resources import default_urdf  # noqa: E402

LAUNCH = Path(__file__).resolve().parent.parent / "launch"
SIM_NODES = {"sim_node", "data_collector", "dynamics_learner", "mpc_planner", "episode_monitor"}
exits: dict[str, int] = {}  # process name -> exit code, of the launch running now


def _launch(name: str, arguments: dict[str, str], folder: Path) -> LaunchDescription:
    """``name`` with ``arguments``, its processes started in ``folder`` (their runs/), and
    every exit code booked in :data:`exits`."""
    exits.clear()
    os.chdir(folder)  # the launched processes inherit it (the nodes' out_dir is relative)
    return LaunchDescription([
        IncludeLaunchDescription(PythonLaunchDescriptionSource(str(LAUNCH / name)), launch_arguments=arguments.items()),
        RegisterEventHandler(OnProcessExit(on_exit=lambda event, _: exits.__setitem__(event.action.name, event.returncode))),
        launch_pytest.actions.ReadyToTest(),
    ])


@pytest.fixture
def workdir(tmp_path):
    here = os.getcwd()
    yield tmp_path
    os.chdir(here)


@launch_pytest.fixture
def sim_launch(workdir):
    return _launch("sim.launch.py", {"model": "ensemble", "namespace": "arm1"}, workdir)


@launch_pytest.fixture
def sim_pg_launch(workdir):
    return _launch("sim.launch.py", {"graph": "sim_pg", "method": "dagger"}, workdir)


@launch_pytest.fixture
def emulated_launch(workdir):
    return _launch("real.launch.py", {"driver": "emulated", "model": "ensemble"}, workdir)


def _runs_and_takes_a_parameter(nodes: set[str], namespace: str = "") -> None:
    """``nodes`` come up in ``namespace``, joint states and commands flow, the planner takes
    a horizon and refuses a bad one with a reason, the monitor logs an episode; a namespaced
    graph keeps /clock and /diagnostics to itself."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("launch_test", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    seen = {"joint_states": 0, "commands": 0}
    logged: list[str] = []

    def count(name):
        return lambda _: seen.__setitem__(name, seen[name] + 1)

    prefix = f"/{namespace}" if namespace else ""
    node.create_subscription(JointState, f"{prefix}/joint_states", count("joint_states"), 10)
    node.create_subscription(Float64MultiArray, f"{prefix}/arm_controller/commands", count("commands"), 10)
    node.create_subscription(Log, "/rosout", lambda m: logged.append(m.msg) if m.name.endswith("episode_monitor") else None, 100)

    def spin_until(condition, timeout, what):
        wait_for(lambda: executor.spin_once(timeout_sec=0.05) or condition(), timeout, what)

    try:
        spin_until(lambda: {(name, prefix or "/") for name in nodes} <= set(node.get_node_names_and_namespaces()), 60,
                   f"the nodes {sorted(nodes)} in {prefix or '/'}")
        spin_until(lambda: seen["joint_states"] > 20 and seen["commands"] > 20, 60, "joint states and commands")
        if namespace:
            assert node.count_publishers("/clock") == node.count_publishers("/diagnostics") == 0
            assert node.count_publishers(f"{prefix}/clock") == 1
        client = AsyncParameterClient(node, f"{prefix}/mpc_planner")
        assert client.wait_for_services(timeout_sec=10.0)
        for value, accepted in ((12, True), (0, False)):
            future = client.set_parameters([Parameter("horizon", value=value)])
            spin_until(future.done, 10, "the parameter service")
            (result,) = future.result().results
            assert result.successful is accepted, (value, result.reason)
            assert accepted or "horizon" in result.reason
        spin_until(lambda: any("final distance" in line for line in logged), 60, "the monitor's line on an episode")
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def _stopped_cleanly(nodes: set[str]) -> None:
    """After launch_pytest's shutdown (SIGINT, as Ctrl-C; then SIGTERM, SIGKILL): every
    node's process exited 0."""
    codes = {name: code for name, code in exits.items() if name.rsplit("-", 1)[0] in nodes}
    assert len(codes) == len(nodes) and all(code == 0 for code in codes.values()), exits


@pytest.mark.launch(fixture=sim_launch)
def test_sim_launch_runs_the_graph_takes_a_parameter_and_stops_cleanly():
    _runs_and_takes_a_parameter(SIM_NODES, namespace="arm1")
    yield
    _stopped_cleanly(SIM_NODES)


@pytest.mark.launch(fixture=sim_pg_launch)
def test_sim_pg_launch_trains_a_policy_that_drives_and_stops_cleanly_mid_round():
    """pg_trainer in DAgger mode: its policy reaches the controller, and a Ctrl-C mid-round
    (labelling with MPC) still ends every process cleanly."""
    nodes = {"sim_node", "data_collector", "dynamics_learner", "pg_trainer", "policy_controller", "episode_monitor"}
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("launch_test", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    policies: list[int] = []
    node.create_subscription(UInt8MultiArray, "/mbrl/policy", lambda m: policies.append(len(m.data)),
                             QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    try:
        wait_for(lambda: executor.spin_once(timeout_sec=0.05) or nodes <= set(node.get_node_names()), 60, f"the nodes {sorted(nodes)}")
        wait_for(lambda: executor.spin_once(timeout_sec=0.05) or policies, 120, "a policy from pg_trainer")
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)
    yield
    _stopped_cleanly(nodes)


@pytest.mark.launch(fixture=emulated_launch)
def test_real_launch_on_the_emulated_bus_runs_takes_a_parameter_and_stops_cleanly():
    nodes = {"emulated_arm", "servo_driver", "data_collector", "dynamics_learner", "mpc_planner", "episode_monitor"}
    _runs_and_takes_a_parameter(nodes)
    yield
    _stopped_cleanly(nodes)


# robot_state_publisher's side of what description.launch.py wires (it is C++, not on PyPI):
# its parameters, and robot_description published latched, as the real one does
STATE_PUBLISHER = f"""#!{sys.executable}
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import String

rclpy.init()
node = Node("robot_state_publisher", automatically_declare_parameters_from_overrides=True)
latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
node.create_publisher(String, "robot_description", latched).publish(String(data=node.get_parameter("robot_description").value))
try:
    rclpy.spin(node)
except (KeyboardInterrupt, ExternalShutdownException):
    pass
"""

# `ros2 bag record`'s side of record.launch.py: its arguments booked next to the bag; on
# SIGINT (Ctrl-C) the bag is closed (metadata.yaml written) and it exits 0
RECORDER = """args="$*"; while [ "$1" != --output ]; do shift; done; out="$2"; echo "$args" > "$out.args"
trap 'mkdir -p "$out"; touch "$out/metadata.yaml"; exit 0' INT TERM
while true; do sleep 0.1; done"""


@launch_pytest.fixture
def description_launch(workdir, monkeypatch):
    stand_in_packages(monkeypatch, workdir / "prefix", "robot_state_publisher",
                      executables={"robot_state_publisher/robot_state_publisher": STATE_PUBLISHER})
    return _launch("description.launch.py", {"use_sim_time": "true"}, workdir)


@pytest.mark.launch(fixture=description_launch)
def test_description_launch_publishes_the_urdf_and_stops_cleanly():
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from std_msgs.msg import String

    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("launch_test", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    descriptions: list[str] = []
    node.create_subscription(String, "/robot_description", lambda m: descriptions.append(m.data),
                             QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    try:
        wait_for(lambda: executor.spin_once(timeout_sec=0.05) or descriptions, 30, "/robot_description")
        assert descriptions[0] == default_urdf().read_text()
        future = AsyncParameterClient(node, "robot_state_publisher").get_parameters(["use_sim_time"])
        wait_for(lambda: executor.spin_once(timeout_sec=0.05) or future.done(), 10, "the parameter service")
        assert future.result().values[0].bool_value is True
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)
    yield
    _stopped_cleanly({"robot_state_publisher"})


@launch_pytest.fixture
def record_launch(workdir, monkeypatch):
    stand_in_ros2(workdir / "bin", RECORDER, monkeypatch)
    return _launch("record.launch.py", {"bag": str(workdir / "bag")}, workdir)


@pytest.mark.launch(fixture=record_launch)
def test_record_launch_records_what_fitting_needs_and_keeps_the_bag_on_ctrl_c(workdir):
    arguments = workdir / "bag.args"
    wait_for(arguments.exists, 30, "the recorder")
    assert arguments.read_text().split() == ["bag", "record", "--storage", "mcap", "--output", str(workdir / "bag"), *RECORD_TOPICS]
    yield
    assert (workdir / "bag" / "metadata.yaml").is_file()
    _stopped_cleanly({"ros2_bag_record"})
