"""The ROS 2 package is well formed and the core stays free of rclpy."""

import ast
import importlib.util
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ["mbrl_control", "mbrl_control.arm.env", "mbrl_control.arm.sim", "mbrl_control.arm.reach", "mbrl_control.cli"]


def test_package_xml_is_format_3_ament_python():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "mbrl_control"
    assert root.find("export/build_type").text == "ament_python"
    exec_depends = {e.text for e in root.findall("exec_depend")}
    for dep in ("rclpy", "std_msgs", "sensor_msgs", "geometry_msgs", "trajectory_msgs", "diagnostic_msgs", "std_srvs"):
        assert dep in exec_depends, dep
    assert "python3-pytest" in {e.text for e in root.findall("test_depend")}


def test_setup_installs_data_files_and_the_console_script():
    tree = ast.parse((ROOT / "setup.py").read_text())
    text = ast.unparse(tree)
    for folder in ("launch", "config", "urdf"):
        assert f"share/{{PACKAGE}}/{folder}" in text
    assert "resource/{PACKAGE}" in text and (ROOT / "resource" / "mbrl_control").exists()
    assert "mbrl-control = mbrl_control.cli:main" in text
    assert (ROOT / "setup.cfg").read_text().count("$base/lib/mbrl_control") == 2


def test_torch_is_pinned():
    assert "torch==2.13.0" in (ROOT / "requirements.txt").read_text().splitlines()


def test_core_does_not_import_rclpy():
    code = f"import importlib, sys\nfor m in {CORE!r}: importlib.import_module(m)\nprint('rclpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_launch_files_compile():
    for path in (ROOT / "launch").glob("*.launch.py"):
        compile(path.read_text(), str(path), "exec")


@pytest.mark.skipif(importlib.util.find_spec("launch_ros") is None, reason="launch_ros is not installed")
def test_description_launch_starts_robot_state_publisher(monkeypatch):
    from launch import LaunchContext
    from launch.actions import OpaqueFunction

    spec = importlib.util.spec_from_file_location("description_launch", ROOT / "launch" / "description.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    (function,) = [e for e in description.entities if isinstance(e, OpaqueFunction)]
    context = LaunchContext()
    context.launch_configurations.update({"urdf": str(ROOT / "urdf" / "so_arm5.urdf"), "use_sim_time": "false"})
    (node,) = function.execute(context)
    assert node.node_package == "robot_state_publisher"
