"""The launch files run under ROS 2's own launch, with launch_pytest: each starts its nodes,
they publish and take a parameter change, and a Ctrl-C (launch's SIGINT) ends every
process cleanly. Skips, naming the missing module, where launch_pytest or the package's
install (``colcon build``: the nodes' executables in the ament index) is absent."""

import os
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
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402

from rosutil import wait_for  # noqa: E402

LAUNCH = Path(__file__).resolve().parent.parent / "launch"
SIM_NODES = {"sim_node", "data_collector", "dynamics_learner", "mpc_planner"}
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
    return _launch("sim.launch.py", {"model": "ensemble"}, workdir)


@launch_pytest.fixture
def emulated_launch(workdir):
    return _launch("real.launch.py", {"driver": "emulated", "model": "ensemble"}, workdir)


def _runs_and_takes_a_parameter(nodes: set[str]) -> None:
    """``nodes`` come up, joint states and commands flow, the planner takes a horizon and
    refuses a bad one with a reason."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("launch_test", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    seen = {"joint_states": 0, "commands": 0}

    def count(name):
        return lambda _: seen.__setitem__(name, seen[name] + 1)

    node.create_subscription(JointState, "/joint_states", count("joint_states"), 10)
    node.create_subscription(Float64MultiArray, "/arm_controller/commands", count("commands"), 10)

    def spin_until(condition, timeout, what):
        wait_for(lambda: executor.spin_once(timeout_sec=0.05) or condition(), timeout, what)

    try:
        spin_until(lambda: nodes <= set(node.get_node_names()), 60, f"the nodes {sorted(nodes)}")
        spin_until(lambda: seen["joint_states"] > 20 and seen["commands"] > 20, 60, "joint states and commands")
        client = AsyncParameterClient(node, "mpc_planner")
        assert client.wait_for_services(timeout_sec=10.0)
        for value, accepted in ((12, True), (0, False)):
            future = client.set_parameters([Parameter("horizon", value=value)])
            spin_until(future.done, 10, "the parameter service")
            (result,) = future.result().results
            assert result.successful is accepted, (value, result.reason)
            assert accepted or "horizon" in result.reason
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
    _runs_and_takes_a_parameter(SIM_NODES)
    yield
    _stopped_cleanly(SIM_NODES)


@pytest.mark.launch(fixture=emulated_launch)
def test_real_launch_on_the_emulated_bus_runs_takes_a_parameter_and_stops_cleanly():
    nodes = {"emulated_arm", "servo_driver", "data_collector", "dynamics_learner", "mpc_planner"}
    _runs_and_takes_a_parameter(nodes)
    yield
    _stopped_cleanly(nodes)
