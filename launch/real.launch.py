"""A real arm: its driver and ros2_control controllers publish /joint_states and execute
/arm_controller/commands (a forward_command_controller with the position interface); this
adds robot_state_publisher with the URDF, the data collector, the dynamics learner and the
MPC planner (the graph ``real`` of mbrl_control/nodes/graph.py).

    ros2 launch mbrl_control real.launch.py dry_run:=true     # commands go to a shadow topic
    ros2 launch mbrl_control real.launch.py commands:=/my_arm/position_controller/commands \\
        joint_states:=/my_arm/joint_states model:=gp params_file:=my_arm.yaml

With ``dry_run:=true`` the planner publishes on ``<commands>_dry_run`` instead: watch what it
would send (``ros2 topic echo``) before the arm moves. Targets come from whoever publishes
/mbrl/target (geometry_msgs/PointStamped, base frame).
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from mbrl_control.nodes.graph import GRAPHS


def _nodes(context):
    graph = GRAPHS["real"]
    share = Path(get_package_share_directory("mbrl_control"))
    value = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    params = value("params_file") or str(share / "config" / graph.params)
    urdf = value("urdf") or str(share / "urdf" / "so_arm5.urdf")
    commands = value("commands")
    planner_commands = commands + "_dry_run" if value("dry_run").lower() == "true" else commands
    remap = {"joint_states": value("joint_states"), "arm_controller/commands": commands}
    chosen = {"dynamics_learner": {"model": value("model")}}
    arm = {"urdf": urdf}
    nodes = [
        Node(package="robot_state_publisher", executable="robot_state_publisher", name="robot_state_publisher",
             namespace=value("namespace"), output="screen", parameters=[{"robot_description": Path(urdf).read_text()}],
             remappings=[("joint_states", remap["joint_states"])]),
    ]
    for spec in graph.specs():
        remappings = dict(remap)
        if spec.name == "mpc_planner":
            remappings["arm_controller/commands"] = planner_commands
        nodes.append(Node(
            package="mbrl_control", executable=spec.executable, name=spec.name, namespace=value("namespace"),
            output="screen", parameters=[params, {"use_sim_time": graph.use_sim_time, **arm, **chosen.get(spec.name, {})}],
            remappings=list(remappings.items()),
        ))
    return nodes


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("model", default_value="gp", choices=["ensemble", "pe", "de", "mlp", "gp"],
                              description="dynamics model type (a GP learns from the fewest trials)"),
        DeclareLaunchArgument("params_file", default_value="", description="ROS parameter file (default: config/real.yaml)"),
        DeclareLaunchArgument("urdf", default_value="", description="the arm's URDF (default: the packaged so_arm5.urdf)"),
        DeclareLaunchArgument("joint_states", default_value="/joint_states", description="the driver's joint state topic"),
        DeclareLaunchArgument("commands", default_value="/arm_controller/commands",
                              description="the position forward-command controller's topic"),
        DeclareLaunchArgument("dry_run", default_value="false", choices=["true", "false"],
                              description="publish the planner's commands on <commands>_dry_run instead"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of every node"),
        OpaqueFunction(function=_nodes),
    ])
