"""The launch files run under ROS 2's own launch, with launch_pytest: each starts its nodes,
they publish and take a parameter change, and a Ctrl-C (launch's SIGINT) ends every
process cleanly. Skips, naming the missing module, where launch_pytest or the package's
install (``colcon build``: the nodes' executables in the ament index) is absent."""

import os
import time
from pathlib import Path

import pytest

launch_pytest = pytest.importorskip("launch_pytest", reason="launch_pytest (ROS 2's launch) is not installed")
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


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


@pytest.mark.launch(fixture=sim_launch)
def test_sim_launch_runs_the_graph_takes_a_parameter_and_stops_cleanly():
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("launch_test", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    seen: dict[str, int] = {"joint_states": 0, "commands": 0}
    node.create_subscription(JointState, "/joint_states", lambda _: seen.__setitem__("joint_states", seen["joint_states"] + 1), 10)
    node.create_subscription(Float64MultiArray, "/arm_controller/commands", lambda _: seen.__setitem__("commands", seen["commands"] + 1), 10)

    def spin_until(condition, timeout, what):
        _wait(lambda: executor.spin_once(timeout_sec=0.05) or condition(), timeout, what)

    try:
        spin_until(lambda: SIM_NODES <= set(node.get_node_names()), 60, f"the nodes {sorted(SIM_NODES)}")
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
    yield
    # launch_pytest has shut the launch down as Ctrl-C does (SIGINT, then SIGTERM, SIGKILL)
    nodes = {name: code for name, code in exits.items() if name.split("-")[0] in SIM_NODES}
    assert len(nodes) == len(SIM_NODES) and all(code == 0 for code in nodes.values()), exits
