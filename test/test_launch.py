"""Launch files and the node graph they share with `mbrl-control bringup`.

The launch files import their node lists from mbrl_control/nodes/graph.py; where `launch`
and `launch_ros` are installed (a ROS 2 distribution), each file's Node actions are
checked against that description. Everything else here runs anywhere."""

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mbrl_control.nodes.graph import GRAPHS, MONITOR, NODES, RECORD_TOPICS
from rosutil import stand_in_packages, stand_in_ros2

ROOT = Path(__file__).resolve().parent.parent
LAUNCH = ROOT / "launch"


def test_every_node_of_every_graph_has_an_executable_and_a_module():
    setup = (ROOT / "setup.py").read_text()
    for spec in NODES.values():
        module, _, cls = spec.target.partition(":")
        assert re.search(rf'"{spec.executable} = {re.escape(module)}:main"', setup), spec.name
        assert importlib.util.find_spec(module) is not None, module
    for graph in GRAPHS.values():
        assert set(graph.nodes) <= set(NODES)
        assert Path(graph.params_file).is_file()


@pytest.mark.parametrize("name, graph", [("sim.launch.py", "GRAPHS"), ("real.launch.py", "GRAPHS"), ("record.launch.py", "RECORD_TOPICS")])
def test_launch_files_take_their_nodes_from_the_graph_description(name, graph):
    tree = ast.parse((LAUNCH / name).read_text())
    imports = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
               and node.module == "mbrl_control.nodes.graph" for alias in node.names}
    assert graph in imports
    assert any(isinstance(node, ast.FunctionDef) and node.name == "generate_launch_description" for node in ast.walk(tree))


def test_record_topics_are_what_fit_reads():
    from mbrl_control.data.rosbag import Topics

    assert set(RECORD_TOPICS) == set(Topics().types())


def _missing_launch() -> str | None:
    """Why ROS 2's launch cannot run here (the module missing, also where launch_ros imports
    but one of its own dependencies does not), or None where it can. The repository's own
    launch/ folder would otherwise pass for a `launch` package."""
    try:
        import launch.actions  # noqa: F401
        import launch_ros.actions  # noqa: F401
        from launch import LaunchDescription  # noqa: F401
    except ImportError as err:
        return f"ROS 2's launch cannot be imported: {err.name or err} is missing ({err})"
    return None


@pytest.fixture
def ros_launch():
    """Skip, naming the missing module, where ROS 2's launch is not installed."""
    reason = _missing_launch()
    if reason:
        pytest.skip(reason)


def test_a_launch_install_missing_a_dependency_is_named_in_the_skip_reason(tmp_path):
    """launch_ros importable, its own dependency not: the skip says which module is missing."""
    for name in ("launch", "launch_ros"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("class LaunchDescription: pass\n")
    (tmp_path / "launch" / "actions.py").write_text("")
    (tmp_path / "launch_ros" / "actions.py").write_text("import osrf_pycommon_not_installed\n")
    code = "import test_launch; print(test_launch._missing_launch())"  # a fresh interpreter: sys.modules stays ours
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT / "test"), str(ROOT)])}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "osrf_pycommon_not_installed is missing" in run.stdout, run.stdout + run.stderr


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name.replace(".", "_"), LAUNCH / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


def _node_actions(description, arguments: dict[str, str]):
    """The Node actions a launch description creates with ``arguments``."""
    import launch
    from launch_ros.actions import Node

    context = launch.LaunchContext()
    context.launch_configurations.update(arguments)
    nodes, pending = [], list(description.entities)
    while pending:
        entity = pending.pop(0)
        if isinstance(entity, Node):
            nodes.append(entity)
            continue
        if isinstance(entity, launch.actions.DeclareLaunchArgument):
            context.launch_configurations.setdefault(entity.name, entity.default_value[0].perform(context) if entity.default_value else "")
            continue
        pending.extend(entity.visit(context) or [])
    return nodes


@pytest.mark.parametrize("name, arguments, graph", [
    ("sim.launch.py", {}, "sim"),
    ("real.launch.py", {}, "real"),
    ("real.launch.py", {"driver": "feetech", "port": "/dev/ttyUSB3", "calibration": "arm.json"}, "real_feetech"),
    ("real.launch.py", {"driver": "emulated"}, "emulated"),
])
def test_launch_file_nodes_match_the_graph(ros_launch, name, arguments, graph):
    nodes = _node_actions(_load(name), arguments)
    executables = [n.node_executable for n in nodes if n.node_package == "mbrl_control"]
    assert executables == [spec.executable for spec in (*GRAPHS[graph].specs(), MONITOR)]
    if "driver" in arguments:  # the bus settings reach the driver (and the emulated bus)
        import launch

        driver = next(n for n in nodes if n.node_executable == "servo_driver")
        context = launch.LaunchContext()
        values = {}
        for entry in driver._Node__parameters:  # what the launch file passes, in order
            if isinstance(entry, dict):
                values.update({"".join(s.perform(context) for s in k): v for k, v in entry.items()})
        calibration = values["calibration"]
        calibration = calibration if isinstance(calibration, str) else "".join(s.perform(context) for s in calibration)
        assert arguments.get("calibration", "/calibration.json") in calibration  # (launch_ros keeps it YAML-encoded)


def test_a_feetech_driver_without_calibration_is_refused(ros_launch):
    with pytest.raises(RuntimeError, match="calibration:=FILE"):
        _node_actions(_load("real.launch.py"), {"driver": "feetech"})


def test_launch_files_need_launch_only_to_run():
    """Without launch installed, importing a launch file fails on `launch` itself, not on
    anything of ours (the tests above then skip)."""
    if _missing_launch() is None:
        pytest.skip("launch is installed: the launch tests above ran")
    for name in ("sim.launch.py", "real.launch.py", "record.launch.py"):
        with pytest.raises(ImportError) as err:
            _load(name)
        assert re.search(r"\b(launch|launch_ros|ament_index_python)\b", str(err.value)), (name, err.value)


def _run_launch(name: str, arguments: dict[str, str]) -> int:
    """Run launch file ``name`` to its end, as ``ros2 launch`` does; its exit code."""
    from launch import LaunchDescription, LaunchService
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    service = LaunchService(argv=[f"{k}:={v}" for k, v in arguments.items()])
    service.include_launch_description(LaunchDescription([IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(LAUNCH / name)), launch_arguments=arguments.items())]))
    return service.run()


def test_record_launch_fails_where_ros2_bag_is_missing(ros_launch, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PATH", str(tmp_path))  # no ros2 anywhere
    assert _run_launch("record.launch.py", {"bag": str(tmp_path / "bag")}) != 0
    assert "`ros2 bag` is not installed" in caplog.text


def test_record_launch_fails_where_the_recorder_dies_without_a_bag(ros_launch, tmp_path, monkeypatch, caplog):
    stand_in_ros2(tmp_path / "bin", "echo 'no storage plugin mcap' >&2; exit 3", monkeypatch)
    assert _run_launch("record.launch.py", {"bag": str(tmp_path / "bag")}) != 0
    assert "exited with code 3 and wrote no bag" in caplog.text


def test_record_launch_succeeds_where_the_recorder_writes_its_bag(ros_launch, tmp_path, monkeypatch):
    # the recorder's last argument is a topic; --output's value is the bag folder
    stand_in_ros2(tmp_path / "bin", 'while [ "$1" != --output ]; do shift; done; mkdir -p "$2"; touch "$2/metadata.yaml"', monkeypatch)
    assert _run_launch("record.launch.py", {"bag": str(tmp_path / "bag")}) == 0
    assert (tmp_path / "bag" / "metadata.yaml").is_file()


def _state_publishers(arguments: dict[str, str]) -> int:
    return sum(n.node_package == "robot_state_publisher" for n in _node_actions(_load("real.launch.py"), arguments))


def test_real_launch_starts_robot_state_publisher_only_where_installed_and_wanted(ros_launch, tmp_path, monkeypatch):
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        get_package_share_directory("robot_state_publisher")
        pytest.skip("robot_state_publisher is installed here: its absence cannot be shown")
    except PackageNotFoundError:
        pass
    assert _state_publishers({}) == 0  # auto, not installed: the launch goes on without it
    assert _state_publishers({"state_publisher": "false"}) == 0
    with pytest.raises(RuntimeError, match="robot_state_publisher is not installed"):
        _state_publishers({"state_publisher": "true"})
    stand_in_packages(monkeypatch, tmp_path / "prefix", "robot_state_publisher")
    assert _state_publishers({}) == 1 and _state_publishers({"state_publisher": "true"}) == 1
    assert _state_publishers({"state_publisher": "false"}) == 0  # the arm's own bringup runs one


def test_launch_choices_come_from_the_registries(ros_launch):
    """A newly registered optimiser or policy method is a choice of sim.launch.py's
    optimizer:= or method:= at once."""
    import launch

    from mbrl_control.loops.policy_methods import POLICY_METHODS, PolicyGradient
    from mbrl_control.planning.optimizers import OPTIMIZERS, RandomShooting

    class Fake(RandomShooting):
        name = "fake_for_launch_test"

    class FakeMethod(PolicyGradient):
        name = "fake_method_for_launch_test"

    try:
        arguments = {e.name: e for e in _load("sim.launch.py").entities if isinstance(e, launch.actions.DeclareLaunchArgument)}
        assert "fake_for_launch_test" in arguments["optimizer"].choices
        assert "fake_method_for_launch_test" in arguments["method"].choices
    finally:
        del OPTIMIZERS["fake_for_launch_test"], POLICY_METHODS["fake_method_for_launch_test"]
