"""Launch files and the node graph they share with `mbrl-control bringup`.

The launch files import their node lists from mbrl_control/nodes/graph.py; where `launch`
and `launch_ros` are installed (a ROS 2 distribution), each file's Node actions are
checked against that description. Everything else here runs anywhere."""

import ast
import importlib.util
import re
from pathlib import Path

import pytest

from mbrl_control.nodes.graph import GRAPHS, NODES, RECORD_TOPICS

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


def _ros_launch() -> bool:
    """Whether ROS 2's launch and launch_ros are importable (the repository's own launch/
    folder would otherwise pass for a `launch` package)."""
    try:
        import launch_ros
        from launch import LaunchDescription
    except ImportError:
        return False
    return bool(launch_ros and LaunchDescription)


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
def test_launch_file_nodes_match_the_graph(name, arguments, graph):
    if not _ros_launch():
        pytest.skip("launch and launch_ros are not installed (no ROS 2 distribution)")
    nodes = _node_actions(_load(name), arguments)
    executables = [n.node_executable for n in nodes if n.node_package == "mbrl_control"]
    assert executables == [spec.executable for spec in GRAPHS[graph].specs()]
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


def test_a_feetech_driver_without_calibration_is_refused():
    if not _ros_launch():
        pytest.skip("launch and launch_ros are not installed (no ROS 2 distribution)")
    with pytest.raises(RuntimeError, match="calibration:=FILE"):
        _node_actions(_load("real.launch.py"), {"driver": "feetech"})


def test_launch_files_need_launch_only_to_run():
    """Without launch installed, importing a launch file fails on `launch` itself, not on
    anything of ours (the tests above then skip)."""
    if _ros_launch():
        pytest.skip("launch is installed: the launch tests above ran")
    for name in ("sim.launch.py", "real.launch.py", "record.launch.py"):
        with pytest.raises(ImportError) as err:
            _load(name)
        assert re.search(r"\b(launch|launch_ros|ament_index_python)\b", str(err.value)), (name, err.value)
